/**
 * A driver with a grace period (`finishAfterMs`): promotion happens at once, the run stays
 * recorded until the grace has passed, nothing is written while it waits, and the first
 * run after it retires the previous value exactly once.
 */
import { describe, expect, it } from 'vitest';
import type { RotationDriver } from '../../../src/rotation/driver.js';
import { runRotation } from '../../../src/rotation/protocol.js';
import { createRotationStateStore } from '../../../src/rotation/state.js';
import { MemoryKv } from '../../support/memory-kv.js';

const silent = { info() {}, warn() {}, error() {} };

function setUp(graceMs: number) {
  const kv = new MemoryKv();
  const store = createRotationStateStore(kv, { mount: 'secret', prefix: 'zsb' });
  let clock = Date.parse('2026-12-01T10:00:00Z');
  const finished: string[] = [];
  let serial = 0;
  const driver: RotationDriver = {
    finishAfterMs: graceMs,
    async create() {
      serial++;
      return { base: serial, pending: { value: `v${serial}` } };
    },
    async checkUnchanged() {},
    async set() {},
    async test() {},
    async promote(run) {
      return String(run.pending.value);
    },
    async finish(run) {
      finished.push(String(run.pending.value));
    },
    async rollback() {},
  };
  const run = () =>
    runRotation('cloud', driver, {
      store,
      instanceId: 'one',
      lockTtlMs: 60000,
      force: true,
      isDue: () => true,
      logger: silent,
      now: () => clock,
    });
  return {
    run,
    finished,
    advance: (ms: number) => {
      clock += ms;
    },
    record: () => kv.latest('secret', 'zsb/rotations/cloud'),
  };
}

describe('rotation with a grace period before finish', () => {
  it('promotes at once, waits without writing, then finishes once', async () => {
    const t = setUp(60000);
    const first = await t.run();
    expect(first).toEqual({
      outcome: 'rotated',
      version: 'v1',
      resumed: false,
      finishAfter: '2026-12-01T10:01:00.000Z',
    });
    expect(t.finished).toEqual([]);
    const recorded = t.record();
    expect(recorded?.data.run).toMatchObject({
      step: 'promoted',
      finishAfter: '2026-12-01T10:01:00.000Z',
    });
    expect(recorded?.data.holder).toBeUndefined();
    expect(recorded?.data.lastOutcome).toBe('rotated');

    t.advance(30000);
    expect(await t.run()).toEqual({ outcome: 'waiting', until: '2026-12-01T10:01:00.000Z' });
    expect(t.record()?.version).toBe(recorded?.version);

    t.advance(30000);
    expect(await t.run()).toEqual({ outcome: 'finished', version: 'v1' });
    expect(t.finished).toEqual(['v1']);
    expect(t.record()?.data.run).toBeUndefined();

    // The next rotation starts afresh.
    expect(await t.run()).toMatchObject({ outcome: 'rotated', version: 'v2' });
    expect(t.finished).toEqual(['v1']);
  });

  it('without a grace period finish runs in the same run', async () => {
    const t = setUp(0);
    expect(await t.run()).toEqual({ outcome: 'rotated', version: 'v1', resumed: false });
    expect(t.finished).toEqual(['v1']);
    expect(t.record()?.data.run).toBeUndefined();
  });
});
