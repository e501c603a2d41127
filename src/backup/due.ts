/**
 * When the next backup is due: never backed up → now; else the schedule after the last
 * success (a cron expression in UTC, croner's dialect as for rotations, or an interval);
 * after failures, no sooner than a backoff (1 min, 2 min, … at most 1 h) after the last one,
 * so a broken OpenBao or a full disk is not hammered every check.
 */
import { Cron } from 'croner';
import type { BackupRecord } from './lock.js';

export type BackupSchedule =
  | { readonly cron: string; readonly everySeconds?: undefined }
  | { readonly everySeconds: number; readonly cron?: undefined };

const BACKOFF_BASE_MS = 60_000;
const BACKOFF_MAX_MS = 3_600_000;

export function isCronExpression(expression: string): boolean {
  try {
    new Cron(expression, { timezone: 'UTC', paused: true }).stop();
    return true;
  } catch {
    return false;
  }
}

export function nextBackupDue(schedule: BackupSchedule, record: BackupRecord): Date {
  let due = new Date(0);
  if (record.lastSuccessAt !== undefined) {
    const last = new Date(record.lastSuccessAt);
    if (schedule.everySeconds !== undefined) {
      due = new Date(last.getTime() + schedule.everySeconds * 1000);
    } else {
      const cron = new Cron(schedule.cron, { timezone: 'UTC', paused: true });
      due = cron.nextRun(last) ?? new Date(8.64e15);
      cron.stop();
    }
  }
  if (record.lastError !== undefined && record.failures > 0) {
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (record.failures - 1));
    const retryAt = new Date(record.lastError.at).getTime() + backoff;
    if (retryAt > due.getTime()) due = new Date(retryAt);
  }
  return due;
}
