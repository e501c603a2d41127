import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../../src/backup/manifest.js';
import { applyRetention, isoWeekOf } from '../../../src/backup/retention.js';

function snapshot(takenAt: string, verified: boolean | 'failed' = true) {
  const manifest = {
    takenAt,
    ...(verified === false
      ? {}
      : {
          verification: {
            result: verified === 'failed' ? 'failed' : 'verified',
            at: takenAt,
            seconds: 1,
            openbaoVersion: '2.7.2',
          },
        }),
  } as unknown as Manifest;
  return { name: takenAt, manifest };
}

const names = (list: readonly { name: string }[]) => list.map((s) => s.name);
const policy = { hourly: 0, daily: 0, weekly: 0, unverified: 0 };

describe('retention', () => {
  it('keeps the newest verified snapshot of each of the last N hours, days and weeks', () => {
    const hourly = [
      '2026-12-01T10:30:00.000Z',
      '2026-12-01T10:05:00.000Z', // same hour as 10:30: dropped
      '2026-12-01T09:30:00.000Z',
      '2026-12-01T08:30:00.000Z',
      '2026-11-30T23:30:00.000Z', // the previous day's newest
      '2026-11-30T12:00:00.000Z',
      '2026-11-23T12:00:00.000Z', // the previous ISO week's newest
    ].map((t) => snapshot(t));
    const { keep, drop } = applyRetention(hourly, { ...policy, hourly: 3, daily: 2, weekly: 2 });
    expect(names(keep)).toEqual([
      '2026-12-01T10:30:00.000Z',
      '2026-12-01T09:30:00.000Z',
      '2026-12-01T08:30:00.000Z',
      '2026-11-30T23:30:00.000Z',
      '2026-11-23T12:00:00.000Z',
    ]);
    expect(names(drop)).toEqual(['2026-12-01T10:05:00.000Z', '2026-11-30T12:00:00.000Z']);
  });

  it('never drops the newest verified snapshot, even with every count at zero', () => {
    const list = [snapshot('2026-12-01T10:00:00.000Z'), snapshot('2026-12-01T09:00:00.000Z')];
    expect(names(applyRetention(list, policy).keep)).toEqual(['2026-12-01T10:00:00.000Z']);
  });

  it('keeps failed or unverified snapshots only while newer than the newest verified one, at most N', () => {
    const list = [
      snapshot('2026-12-01T12:00:00.000Z', 'failed'),
      snapshot('2026-12-01T11:00:00.000Z', false),
      snapshot('2026-12-01T10:30:00.000Z', 'failed'),
      snapshot('2026-12-01T10:00:00.000Z'),
      snapshot('2026-12-01T09:00:00.000Z', 'failed'),
    ];
    const { keep, drop } = applyRetention(list, { ...policy, unverified: 2 });
    expect(names(keep)).toEqual([
      '2026-12-01T12:00:00.000Z',
      '2026-12-01T11:00:00.000Z',
      '2026-12-01T10:00:00.000Z',
    ]);
    expect(names(drop)).toEqual(['2026-12-01T10:30:00.000Z', '2026-12-01T09:00:00.000Z']);
  });

  it('drops nothing verified when none is verified yet except beyond the unverified count', () => {
    const list = [snapshot('2026-12-01T12:00:00.000Z', 'failed')];
    expect(names(applyRetention(list, { ...policy, unverified: 1 }).keep)).toHaveLength(1);
  });

  it('numbers ISO weeks across a year boundary', () => {
    expect(isoWeekOf(new Date('2026-12-31T12:00:00Z'))).toBe('2026-W53');
    expect(isoWeekOf(new Date('2027-01-03T12:00:00Z'))).toBe('2026-W53');
    expect(isoWeekOf(new Date('2027-01-04T12:00:00Z'))).toBe('2027-W01');
  });
});
