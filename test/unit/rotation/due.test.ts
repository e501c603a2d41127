import { describe, expect, it } from 'vitest';
import type { Rotation } from '../../../src/policy/types.js';
import { failureBackoffMs, isDue, nextDue } from '../../../src/rotation/due.js';

const base: Rotation = {
  name: 'app-db',
  secret: 'app-db',
  everySeconds: 86400,
  target: { kind: 'kv' },
  location: { file: 'a.yaml', line: 1, column: 1 },
};
const at = (iso: string) => new Date(iso);

describe('when a rotation is due', () => {
  it('never rotated, or a run to resume: at once', () => {
    expect(isDue(base, { failures: 0 }, at('2026-11-26T10:00:00Z'))).toBe(true);
    const resuming = {
      failures: 0,
      lastSuccess: '2026-11-26T09:00:00Z',
      run: { id: 'r', step: 'set' as const, startedAt: '', base: 1, pending: {} },
    };
    expect(isDue(base, resuming, at('2026-11-26T10:00:00Z'))).toBe(true);
  });

  it('a promoted run waiting for its grace period: when the grace ends, whatever the schedule', () => {
    const waiting = {
      failures: 0,
      lastSuccess: '2026-11-26T09:00:00Z',
      run: {
        id: 'r',
        step: 'promoted' as const,
        startedAt: '',
        base: 1,
        pending: {},
        promotedAt: '2026-11-26T09:00:00Z',
        finishAfter: '2026-11-26T10:00:00.000Z',
      },
    };
    const windowed = { ...base, window: { startMinute: 120, endMinute: 240 } };
    for (const rotation of [base, windowed]) {
      expect(nextDue(rotation, waiting, at('2026-11-26T09:30:00Z')).toISOString()).toBe(
        '2026-11-26T10:00:00.000Z',
      );
    }
  });

  it('every: the interval after the last success', () => {
    const record = { failures: 0, lastSuccess: '2026-11-25T10:00:00Z' };
    expect(nextDue(base, record, at('2026-11-26T09:00:00Z')).toISOString()).toBe(
      '2026-11-26T10:00:00.000Z',
    );
    expect(isDue(base, record, at('2026-11-26T09:59:59Z'))).toBe(false);
    expect(isDue(base, record, at('2026-11-26T10:00:00Z'))).toBe(true);
  });

  it('cron: the next match after the last success, in UTC', () => {
    const { everySeconds: _unused, ...rest } = base;
    const weekly: Rotation = { ...rest, schedule: '0 3 * * 1' };
    const record = { failures: 0, lastSuccess: '2026-11-23T03:00:05Z' }; // a Monday
    expect(nextDue(weekly, record, at('2026-11-26T00:00:00Z')).toISOString()).toBe(
      '2026-11-30T03:00:00.000Z',
    );
  });

  it('jitter delays later runs by the same amount on every instance, within the bound', () => {
    const jittered = { ...base, jitterSeconds: 3600 };
    const record = { failures: 0, lastSuccess: '2026-11-25T10:00:00Z' };
    const now = at('2026-11-26T00:00:00Z');
    const a = nextDue(jittered, record, now).getTime();
    expect(nextDue(jittered, record, now).getTime()).toBe(a);
    const plain = at('2026-11-26T10:00:00Z').getTime();
    expect(a).toBeGreaterThanOrEqual(plain);
    expect(a).toBeLessThan(plain + 3600_000);
    // Never before its first success: no jitter on the first run.
    expect(isDue(jittered, { failures: 0 }, now)).toBe(true);
  });

  it('a window holds a due rotation until it opens, also across midnight', () => {
    const windowed = { ...base, window: { startMinute: 60, endMinute: 300 } }; // 01:00-05:00
    expect(nextDue(windowed, { failures: 0 }, at('2026-11-26T12:00:00Z')).toISOString()).toBe(
      '2026-11-27T01:00:00.000Z',
    );
    expect(isDue(windowed, { failures: 0 }, at('2026-11-26T02:30:00Z'))).toBe(true);
    const overnight = { ...base, window: { startMinute: 22 * 60, endMinute: 120 } };
    expect(isDue(overnight, { failures: 0 }, at('2026-11-26T23:30:00Z'))).toBe(true);
    expect(isDue(overnight, { failures: 0 }, at('2026-11-26T01:59:00Z'))).toBe(true);
    expect(isDue(overnight, { failures: 0 }, at('2026-11-26T02:00:00Z'))).toBe(false);
  });

  it('failures back off: 30 s, 1 min, 2 min … at most 1 h', () => {
    expect([1, 2, 3, 4, 10, 20].map(failureBackoffMs)).toEqual([
      30_000, 60_000, 120_000, 240_000, 3_600_000, 3_600_000,
    ]);
    const failed = {
      failures: 2,
      lastError: { at: '2026-11-26T10:00:00Z', step: 'set', message: 'target error 28P01' },
      run: { id: 'r', step: 'created' as const, startedAt: '', base: 1, pending: {} },
    };
    expect(isDue(base, failed, at('2026-11-26T10:00:59Z'))).toBe(false);
    expect(isDue(base, failed, at('2026-11-26T10:01:00Z'))).toBe(true);
  });
});
