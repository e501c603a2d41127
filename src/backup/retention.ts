/**
 * Retention: which snapshots to keep, as a pure function of their manifests (grandfather-
 * father-son, like restic's and borg's `prune`). Only verified snapshots fill the hourly,
 * daily and weekly slots: for each of the newest N hours (days, ISO weeks) that have one,
 * the newest verified snapshot of that period is kept. The newest verified snapshot is
 * always kept, whatever the counts say. Unverified snapshots (failed, or interrupted before
 * their verification) are kept only while newer than the newest verified one, at most
 * `unverified` of them, so that a failure can be examined but cannot pile up.
 */
import { isVerified, type Manifest } from './manifest.js';

export interface RetentionPolicy {
  readonly hourly: number;
  readonly daily: number;
  readonly weekly: number;
  readonly unverified: number;
}

export interface RetentionDecision<T> {
  readonly keep: readonly T[];
  readonly drop: readonly T[];
}

function hourOf(at: Date): string {
  return at.toISOString().slice(0, 13);
}

function dayOf(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** ISO 8601 week (`2026-W49`), in UTC. */
export function isoWeekOf(at: Date): string {
  const d = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
  const weekday = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${d.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

export function applyRetention<T extends { readonly manifest: Manifest }>(
  snapshots: readonly T[],
  policy: RetentionPolicy,
): RetentionDecision<T> {
  const newestFirst = [...snapshots].sort((a, b) =>
    b.manifest.takenAt.localeCompare(a.manifest.takenAt),
  );
  const keep = new Set<T>();
  const verified = newestFirst.filter((s) => isVerified(s.manifest));
  const newestVerified = verified[0];
  if (newestVerified !== undefined) keep.add(newestVerified);

  const slots = (count: number, period: (at: Date) => string) => {
    const seen = new Set<string>();
    for (const snapshot of verified) {
      if (seen.size >= count) break;
      const key = period(new Date(snapshot.manifest.takenAt));
      if (seen.has(key)) continue;
      seen.add(key);
      keep.add(snapshot);
    }
  };
  slots(policy.hourly, hourOf);
  slots(policy.daily, dayOf);
  slots(policy.weekly, isoWeekOf);

  const cutoff = newestVerified?.manifest.takenAt ?? '';
  let unverified = 0;
  for (const snapshot of newestFirst) {
    if (isVerified(snapshot.manifest) || snapshot.manifest.takenAt <= cutoff) continue;
    if (unverified >= policy.unverified) break;
    unverified += 1;
    keep.add(snapshot);
  }
  return {
    keep: newestFirst.filter((s) => keep.has(s)),
    drop: newestFirst.filter((s) => !keep.has(s)),
  };
}
