import { describe, expect, it } from 'vitest';
import { nextBackupDue } from '../../../src/backup/due.js';
import { BackupLockLost, createBackupState } from '../../../src/backup/lock.js';
import { MemoryKv } from '../../support/memory-kv.js';

const options = (instanceId: string, now: () => number) => ({
  mount: 'secret',
  prefix: 'zsb',
  instanceId,
  ttlMs: 1000,
  now,
});

describe('backup lock (KV check-and-set)', () => {
  it('lets one holder in; the other is busy until the lock expires', async () => {
    const kv = new MemoryKv();
    let now = 1_000_000;
    const a = createBackupState(
      kv,
      options('a', () => now),
    );
    const b = createBackupState(
      kv,
      options('b', () => now),
    );
    const held = await a.acquire();
    expect(held).not.toBe('busy');
    expect(await b.acquire()).toBe('busy');
    now += 1001;
    const taken = await b.acquire();
    expect(taken).not.toBe('busy');
    // The first holder comes back: its next write loses (the record's version moved on).
    if (held === 'busy') throw new Error('unreachable');
    await expect(held.update({ lastStartedAt: 'x' })).rejects.toBeInstanceOf(BackupLockLost);
  });

  it('two instances racing for a free lock: exactly one gets it', async () => {
    const kv = new MemoryKv();
    const now = () => 5_000;
    const results = await Promise.all(
      ['a', 'b', 'c'].map((id) => createBackupState(kv, options(id, now)).acquire()),
    );
    expect(results.filter((r) => r !== 'busy')).toHaveLength(1);
  });

  it('release records the outcome and frees the lock', async () => {
    const kv = new MemoryKv();
    const state = createBackupState(
      kv,
      options('a', () => 1),
    );
    const held = await state.acquire();
    if (held === 'busy') throw new Error('busy');
    await held.release({ lastSuccessAt: '2026-12-01T10:00:00.000Z', failures: 0 });
    const record = await state.read();
    expect(record.holder).toBeUndefined();
    expect(record.lastSuccessAt).toBe('2026-12-01T10:00:00.000Z');
    expect(
      await createBackupState(
        kv,
        options('b', () => 1),
      ).acquire(),
    ).not.toBe('busy');
  });
});

describe('when a backup is due', () => {
  it('at once without a previous success; then by interval or cron; later after failures', () => {
    expect(nextBackupDue({ everySeconds: 3600 }, { failures: 0 }).getTime()).toBe(0);
    const last = '2026-12-01T10:00:00.000Z';
    expect(nextBackupDue({ everySeconds: 3600 }, { failures: 0, lastSuccessAt: last })).toEqual(
      new Date('2026-12-01T11:00:00.000Z'),
    );
    expect(nextBackupDue({ cron: '0 3 * * *' }, { failures: 0, lastSuccessAt: last })).toEqual(
      new Date('2026-12-02T03:00:00.000Z'),
    );
    const failing = {
      failures: 3,
      lastSuccessAt: last,
      lastError: { at: '2026-12-01T11:30:00.000Z', stage: 'snapshot', message: 'x' },
    };
    // 1 min × 2^(3-1) = 4 min after the last failure.
    expect(nextBackupDue({ everySeconds: 3600 }, failing)).toEqual(
      new Date('2026-12-01T11:34:00.000Z'),
    );
  });
});
