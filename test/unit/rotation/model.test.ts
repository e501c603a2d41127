/**
 * Model-based test of the rotation protocol (fast-check): several instances start the same
 * due rotation against one KV store and one target, with random crashes (an instance stops
 * at a step boundary for good), pauses past the lock's expiry (it comes back later),
 * OpenBao outages, and a foreign edit of the secret. The real protocol, state store and
 * KV secret run against an in-memory KV with check-and-set; the target is two alternating
 * logins. Invariants:
 * - at every instant the current secret logs in to the target;
 * - there is at most one pending value (one run id) at any time;
 * - after the survivors finish and one clean restart, exactly one rotation was promoted,
 *   nothing is pending, and a foreign edit was never overwritten.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OpenBaoError } from '../../../src/openbao/errors.js';
import type { KvReader, KvWriter } from '../../../src/openbao/interface.js';
import {
  ConflictError,
  type RotationDriver,
  RotationTestFailed,
} from '../../../src/rotation/driver.js';
import {
  ROTATION_BOUNDARIES,
  type RotationBoundary,
  runRotation,
} from '../../../src/rotation/protocol.js';
import { createGeneratedKvDriver, KvSecret } from '../../../src/rotation/providers/kv.js';
import {
  createRotationStateStore,
  type RotationRecord,
  type RotationStateStore,
} from '../../../src/rotation/state.js';
import { MemoryKv } from '../../support/memory-kv.js';

/** Every boundary but the last: a crash after `finished` is a completed run. */
const BOUNDARIES = ROTATION_BOUNDARIES.filter((b) => b !== 'finished');
const LOCK_TTL_MS = 1000;
const STEP_MS = 150;
const SECRET = 'app/db';
const STATE_PREFIX = 'zsb';

class World {
  /** The target: login → password that works. */
  readonly logins = new Map<string, string>([
    ['app_a', 'initial'],
    ['app_b', 'unknown-b'],
  ]);
  /** OpenBao's KV: every call is a step of this world (see `op`). */
  readonly kv: MemoryKv;
  clock = 1_000_000;
  outageOps = 0;
  violations: string[] = [];
  foreignEdit = false;

  constructor(private readonly s: fc.Scheduler) {
    this.kv = new MemoryKv((label, action) => this.op(label, action));
  }

  /** Every operation is a scheduling point, advances the clock, and may hit an outage. */
  async op<T>(label: string, action: () => T): Promise<T> {
    await this.s.schedule(Promise.resolve(), label);
    this.clock += STEP_MS;
    if (this.outageOps > 0) {
      this.outageOps--;
      throw new OpenBaoError(label, 'unavailable', 0);
    }
    const result = action();
    this.check();
    return result;
  }

  check(): void {
    const current = this.kv.latest('secret', SECRET);
    if (current === null) return;
    const { username, password } = current.data as { username: string; password: string };
    if (this.logins.get(username) !== password) {
      this.violations.push(`current login ${username} does not work`);
    }
    const runs = new Set<string>();
    for (const key of this.kv.paths()) {
      if (!key.includes('/rotations/')) continue;
      const [mount = '', ...path] = key.split('/');
      const record = this.kv.latest(mount, path.join('/'))?.data as unknown as RotationRecord;
      if (record.run) runs.add(record.run.id);
    }
    if (runs.size > 1) this.violations.push('two pending values');
  }
}

/** The alternating PostgreSQL provider's logic against the in-memory target. */
function alternatingDriver(world: World, secret: KvSecret): RotationDriver {
  const users = ['app_a', 'app_b'];
  let counter = 0;
  return {
    async create() {
      const current = await secret.current();
      const active = (current.data as { username: string }).username;
      counter++;
      return {
        base: current.version,
        pending: {
          ...current.data,
          username: users[1 - users.indexOf(active)],
          password: `pw-${world.clock}-${counter}`,
        },
      };
    },
    checkUnchanged: (run) => secret.checkUnchanged(run),
    set: (run) =>
      world.op('target set', () => {
        world.logins.set(String(run.pending.username), String(run.pending.password));
      }),
    test: (run) =>
      world.op('target test', () => {
        if (world.logins.get(String(run.pending.username)) !== run.pending.password) {
          throw new RotationTestFailed('login failed');
        }
      }),
    promote: (run) => secret.promote(run),
    async finish() {},
    async rollback() {},
  };
}

const silent = { info() {}, warn() {}, error() {} };

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs scheduled tasks until none is left, also across timers (retry backoff). */
async function drain(s: fc.Scheduler): Promise<void> {
  for (let idle = 0; idle < 3; ) {
    if (s.count() > 0) {
      idle = 0;
      await s.waitAll();
    } else {
      idle++;
      await tick();
    }
  }
}

/** Runs scheduled tasks until `promise` settles. */
async function drive<T>(s: fc.Scheduler, promise: Promise<T>): Promise<T> {
  let settled = false;
  const watched = promise.finally(() => {
    settled = true;
  });
  while (!settled) {
    if (s.count() > 0) await s.waitAll();
    else await tick();
  }
  return watched;
}

interface InstancePlan {
  readonly crashAt?: RotationBoundary;
  readonly pauseAt?: RotationBoundary;
}

const planArb: fc.Arbitrary<InstancePlan> = fc.oneof(
  fc.constant({}),
  fc.constantFrom(...BOUNDARIES).map((crashAt) => ({ crashAt })),
  fc.constantFrom(...BOUNDARIES).map((pauseAt) => ({ pauseAt })),
);

describe('rotation protocol model', () => {
  it('keeps its invariants under crashes, pauses, outages, concurrent starts and foreign edits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(planArb, { minLength: 1, maxLength: 3 }),
        fc.nat({ max: 6 }),
        fc.option(fc.nat({ max: 12 }), { nil: undefined }),
        async (s, plans, outageOps, foreignEditAfterOps) => {
          const world = new World(s);
          world.kv.put('secret', SECRET, { username: 'app_a', password: 'initial', host: 'db' });
          const kv = world.kv;
          const store = createRotationStateStore(kv, { mount: 'secret', prefix: STATE_PREFIX });
          const secret = new KvSecret(kv, { mount: 'secret', path: SECRET });
          const isDue = (record: RotationRecord) => record.lastSuccess === undefined;
          const runOptions = (stateStore: RotationStateStore, instanceId: string) => ({
            store: stateStore,
            instanceId,
            lockTtlMs: LOCK_TTL_MS,
            force: false,
            isDue,
            logger: silent,
            attempts: 2,
            retryBaseMs: 0,
            now: () => world.clock,
            // Backoff is a scheduling point like every other step.
            sleep: () => s.schedule(Promise.resolve(), 'backoff').then(() => undefined),
          });
          const resumes: Array<() => void> = [];
          let ops = 0;
          const onOp = () => {
            ops++;
            if (ops === 3) world.outageOps = outageOps;
            if (foreignEditAfterOps !== undefined && ops === foreignEditAfterOps) {
              // An admin writes the secret (same login, a note added) mid-rotation.
              const latest = world.kv.latest('secret', SECRET);
              if (latest) {
                world.kv.put('secret', SECRET, { ...latest.data, note: 'edited by hand' });
                world.foreignEdit = true;
              }
            }
          };
          const counted: KvReader & KvWriter = {
            kvReadWrapped: () => kv.kvReadWrapped(),
            wrapData: () => kv.wrapData(),
            kvRead: (m, p) => {
              onOp();
              return kv.kvRead(m, p);
            },
            kvWrite: (m, p, d, o) => {
              onOp();
              return kv.kvWrite(m, p, d, o);
            },
          };
          const countedStore = createRotationStateStore(counted, {
            mount: 'secret',
            prefix: STATE_PREFIX,
          });
          const countedSecret = new KvSecret(counted, { mount: 'secret', path: SECRET });

          const outcomes: Array<string | undefined> = plans.map(() => undefined);
          plans.forEach((plan, i) => {
            void runRotation('app-db', alternatingDriver(world, countedSecret), {
              ...runOptions(countedStore, `instance-${i}`),
              onBoundary: (b) => {
                if (b === plan.crashAt) return new Promise<void>(() => {}); // killed
                if (b === plan.pauseAt) {
                  return new Promise<void>((resume) => resumes.push(resume));
                }
              },
            })
              .catch((error: unknown) => {
                // OpenBao down while reading or taking the lock: the run never started.
                if (error instanceof OpenBaoError && error.retryable) return { outcome: 'failed' };
                throw error;
              })
              .then((o) => {
                outcomes[i] = o.outcome;
              });
          });
          // Let the scheduler interleave every instance until nothing can proceed; paused
          // instances come back after their lock expired.
          await drain(s);
          while (resumes.length > 0) {
            world.clock += LOCK_TTL_MS * 2;
            for (const resume of resumes.splice(0)) resume();
            await drain(s);
          }

          // Every instance that was not killed came to an end (no one waits forever on a lock).
          plans.forEach((plan, i) => {
            if (plan.crashAt === undefined) expect(outcomes[i]).toBeDefined();
          });

          // A clean restart (after every lock expired) finishes or aborts what is left.
          world.outageOps = 0;
          let rotated = false;
          for (let attempt = 0; attempt < 4 && !rotated; attempt++) {
            world.clock += LOCK_TTL_MS * 2;
            const outcome = await drive(
              s,
              runRotation(
                'app-db',
                alternatingDriver(world, secret),
                runOptions(store, `restart-${attempt}`),
              ),
            );
            rotated = outcome.outcome === 'rotated' || outcome.outcome === 'not-due';
          }

          expect(world.violations).toEqual([]);
          expect(rotated).toBe(true);
          const { record } = await drive(s, store.read('app-db'));
          expect(record.run).toBeUndefined();
          expect(record.lastSuccess).toBeDefined();
          // Exactly one rotation was promoted: versions written by rotations.
          const versions = world.kv.history('secret', SECRET);
          const byRotation = versions.filter((v) =>
            String((v.data as { password: string }).password).startsWith('pw-'),
          );
          const distinctPasswords = new Set(
            byRotation.map((v) => (v.data as { password: string }).password),
          );
          expect(distinctPasswords.size).toBe(1);
          const latest = versions[versions.length - 1]?.data as Record<string, unknown>;
          if (world.foreignEdit) expect(latest.note).toBe('edited by hand');
          expect(world.logins.get(String(latest.username))).toBe(latest.password);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('KvSecret', () => {
  it('aborts a promotion over a foreign edit and accepts its own earlier promotion', async () => {
    const kv = new MemoryKv();
    kv.put('secret', 'x', { password: 'a' });
    const entries = kv.history('secret', 'x');
    const secret = new KvSecret(kv, { mount: 'secret', path: 'x' });
    const run = {
      id: 'r',
      step: 'tested' as const,
      startedAt: '',
      base: 1,
      pending: { password: 'b' },
    };
    expect(await secret.promote(run)).toBe(2);
    // Repeated after a crash: already promoted, same answer, no third version.
    expect(await secret.promote(run)).toBe(2);
    kv.put('secret', 'x', { password: 'by hand' });
    await expect(secret.promote({ ...run, pending: { password: 'c' }, base: 2 })).rejects.toThrow(
      ConflictError,
    );
    expect(entries).toHaveLength(3);
  });
});

describe('shutdown', () => {
  it('stops at the next step boundary, releases the lock, and the next holder resumes at once', async () => {
    const kv = new MemoryKv();
    kv.put('secret', 'app/key', { token: 'old' });
    const stateStore = createRotationStateStore(kv, { mount: 'secret', prefix: 'zsb' });
    const secret = new KvSecret(kv, { mount: 'secret', path: 'app/key' });
    const driver = createGeneratedKvDriver(secret, { key: 'token', kind: 'token', length: 16 });
    const controller = new AbortController();
    const common = {
      store: stateStore,
      lockTtlMs: 120_000,
      force: false,
      isDue: () => true,
      logger: silent,
    };
    const first = await runRotation('app-key', driver, {
      ...common,
      instanceId: 'terminating',
      signal: controller.signal,
      // SIGTERM arrives while the run is between create and set.
      onBoundary: (b) => {
        if (b === 'created') controller.abort();
      },
    });
    expect(first).toEqual({ outcome: 'stopped' });
    const { record } = await stateStore.read('app-key');
    expect(record.holder).toBeUndefined();
    expect(record.run?.step).toBe('created');
    // No waiting for the 2-minute lock: the next instance resumes the same run now.
    const second = await runRotation('app-key', driver, { ...common, instanceId: 'next' });
    expect(second).toMatchObject({ outcome: 'rotated', resumed: true });
    expect(kv.history('secret', 'app/key')).toHaveLength(2);
    expect(kv.history('secret', 'app/key')[1]?.data.token).toBe(record.run?.pending.token);
  });
});
