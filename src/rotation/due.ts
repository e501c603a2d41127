/**
 * When a rotation is next due (policy.md: a rotation that never completed is due at once;
 * jitter only delays later runs; a window limits when a run may start; failures back off).
 * Pure and deterministic: every broker instance computes the same time from the same
 * record, so jitter does not make instances disagree.
 */
import { createHash } from 'node:crypto';
import { nextCronRun } from '../policy/schedule.js';
import type { Rotation } from '../policy/types.js';
import type { RotationRecord } from './state.js';

const MINUTE_MS = 60_000;
const DAY_MINUTES = 24 * 60;
/** Backoff after consecutive failures: 30 s, 1 min, 2 min, … at most 1 h. */
const FAILURE_BACKOFF_BASE_MS = 30_000;
const FAILURE_BACKOFF_MAX_MS = 3_600_000;

function jitterMs(rotation: Rotation, after: string): number {
  if (!rotation.jitterSeconds) return 0;
  const digest = createHash('sha256').update(`${rotation.name}\n${after}`).digest();
  return (digest.readUInt32BE(0) / 0x1_0000_0000) * rotation.jitterSeconds * 1000;
}

function inWindow(window: NonNullable<Rotation['window']>, at: Date): boolean {
  const minute = at.getUTCHours() * 60 + at.getUTCMinutes();
  return window.startMinute < window.endMinute
    ? minute >= window.startMinute && minute < window.endMinute
    : minute >= window.startMinute || minute < window.endMinute; // e.g. 22:00-02:00
}

/** The first instant at or after `at` that lies in the window. */
function intoWindow(window: NonNullable<Rotation['window']>, at: Date): Date {
  if (inWindow(window, at)) return at;
  const minute = at.getUTCHours() * 60 + at.getUTCMinutes();
  const wait = (window.startMinute - minute + DAY_MINUTES) % DAY_MINUTES;
  const start = new Date(at.getTime() + wait * MINUTE_MS);
  start.setUTCSeconds(0, 0);
  return start;
}

export function failureBackoffMs(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(FAILURE_BACKOFF_MAX_MS, FAILURE_BACKOFF_BASE_MS * 2 ** (failures - 1));
}

/** When the rotation should next start (possibly in the past: due now). */
export function nextDue(rotation: Rotation, record: RotationRecord, now: Date): Date {
  // A promoted run waiting for its grace period: runs before then answer `waiting`.
  const finishAfter = record.run?.finishAfter;
  if (finishAfter !== undefined) return new Date(finishAfter);
  let due: Date;
  if (record.run !== undefined || record.lastSuccess === undefined) {
    due = new Date(0); // a run to resume, or never rotated: at once
  } else {
    const last = new Date(record.lastSuccess);
    const base =
      rotation.everySeconds !== undefined
        ? new Date(last.getTime() + rotation.everySeconds * 1000)
        : (nextCronRun(rotation.schedule ?? '', last) ?? new Date(8.64e15));
    due = new Date(base.getTime() + jitterMs(rotation, record.lastSuccess));
  }
  if (record.lastError !== undefined && record.failures > 0) {
    const retryAt = new Date(record.lastError.at).getTime() + failureBackoffMs(record.failures);
    if (retryAt > due.getTime()) due = new Date(retryAt);
  }
  if (rotation.window !== undefined) {
    due = intoWindow(rotation.window, due.getTime() < now.getTime() ? now : due);
  }
  return due;
}

export function isDue(rotation: Rotation, record: RotationRecord, now: Date): boolean {
  return nextDue(rotation, record, now).getTime() <= now.getTime();
}
