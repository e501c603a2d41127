/**
 * Rotation against real OpenBao and PostgreSQL, with real `zsb rotate` processes:
 * SIGKILL at every step boundary, alternating logins under a client that logs in
 * continuously, two instances on one due rotation, failure visibility.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROTATION_BOUNDARIES } from '../../src/rotation/protocol.js';
import { exitOf, runZsb, spawnZsb, waitForOutput } from '../support/process.js';
import { realOpenBao, uniquePrefix } from '../support/real-openbao.js';
import {
  killRotationAt,
  loginProblem,
  type RotationFixture,
  rotationStatus,
  setUpRotation,
} from '../support/rotation-setup.js';

const BOUNDARIES = ROTATION_BOUNDARIES;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('rotation with real processes', () => {
  let fx: RotationFixture;

  beforeAll(async () => {
    fx = await setUpRotation(uniquePrefix('rot'));
    // The server really checks passwords; otherwise "logs in" would prove nothing.
    expect(await loginProblem(fx.users.single, 'certainly-wrong')).toBe('28P01');
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  const rotate = (...args: string[]) =>
    runZsb(['rotate', ...args, '--config', fx.configFile], { cwd: fx.dir });

  it('rotates a single PostgreSQL login: the new value logs in, the old one no longer does', async () => {
    const before = await fx.kv('single');
    const result = await rotate('app-db');
    // stdout is the answer alone (the audit event, sink stdout by default, goes to stderr).
    expect(result.stdout).toBe(`app-db: rotated (version ${before.version + 1})\n`);
    expect(result.stderr).toContain('"event":"secret.rotated"');
    expect(result.code).toBe(0);
    const after = await fx.kv('single');
    expect(after.version).toBe(before.version + 1);
    expect(after.data.password).not.toBe(before.data.password);
    expect(String(after.data.password)).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(await loginProblem(fx.users.single, String(after.data.password))).toBeUndefined();
    expect(await loginProblem(fx.users.single, String(before.data.password))).toBe('28P01');
    // The previous version stays available in KV as the rollback target.
    const bao = realOpenBao();
    const previous = await bao.admin.kvRead('secret', fx.paths.single, { version: before.version });
    expect(previous?.data.password).toBe(before.data.password);
    // Logs and output never carry the values.
    expect(result.stdout + result.stderr).not.toContain(String(after.data.password));
    expect(result.stdout + result.stderr).not.toContain(String(before.data.password));
  });

  it.each(BOUNDARIES)(
    'SIGKILL at %s, then a restart: one rotation completes and the current value logs in',
    async (boundary) => {
      const before = await fx.kv('single');
      await killRotationAt(fx, 'app-db', boundary);

      const crashed = await fx.state('app-db');
      // One run slot: at most one pending value, whatever step the crash hit.
      const run = crashed?.run as { id: string; step: string } | undefined;
      if (boundary === 'locked' || boundary === 'finished') expect(run).toBeUndefined();
      else expect(run?.id).toMatch(/^[0-9a-f-]{36}$/);

      // The dead holder's lock expires (lockTtlSeconds: 1); the restart resumes its run.
      await sleep(1200);
      const restart = await rotate('app-db');
      expect(restart.code, restart.stderr).toBe(0);
      const resumed = boundary !== 'locked' && boundary !== 'finished';
      expect(restart.stdout).toContain(resumed ? 'resumed an interrupted run' : 'rotated');

      const after = await fx.kv('single');
      // A run that crashed after promoting is not promoted twice; a fresh one adds one.
      const expected = before.version + (boundary === 'finished' ? 2 : 1);
      expect(after.version).toBe(expected);
      expect((await fx.state('app-db'))?.run).toBeUndefined();
      expect(await loginProblem(fx.users.single, String(after.data.password))).toBeUndefined();
    },
    60000,
  );

  it('a holder that comes back after losing its lock stops; the rotation completes once', async () => {
    const before = await fx.kv('single');
    const late = spawnZsb(['rotate', 'app-db', '--config', fx.configFile], {
      cwd: fx.dir,
      env: { ZSB_ROTATION_PAUSE_AT: 'set:4000' },
    });
    const lateOutput = waitForOutput(late, /app-db: /, 30000);
    await waitForOutput(late, /paused at set/, 30000, 'stderr');
    // Its lock (1 s) expires while it sleeps; another instance takes over and finishes.
    await sleep(1200);
    const other = await rotate('app-db');
    expect(other.code, other.stderr).toBe(0);
    expect(other.stdout).toContain('resumed an interrupted run');
    // The late holder wakes up, loses its next check-and-set and stops without a side effect.
    expect(await lateOutput).toContain('app-db: stopped: another instance took over the lock');
    expect(await exitOf(late)).toBe(1);
    const after = await fx.kv('single');
    expect(after.version).toBe(before.version + 1);
    expect((await fx.state('app-db'))?.run).toBeUndefined();
    expect(await loginProblem(fx.users.single, String(after.data.password))).toBeUndefined();
  }, 60000);

  it('alternating logins: a client logging in continuously never fails during rotations', async () => {
    const bao = realOpenBao();
    let attempts = 0;
    const failures: string[] = [];
    const usersSeen = new Set<string>();
    let stop = false;
    const client = (async () => {
      while (!stop) {
        const entry = await bao.admin.kvRead('secret', fx.paths.alt);
        const user = String(entry?.data.username);
        usersSeen.add(user);
        const problem = await loginProblem(user, String(entry?.data.password));
        attempts++;
        if (problem !== undefined) failures.push(`${user}: ${problem}`);
      }
    })();
    const versions: number[] = [];
    for (let i = 0; i < 4; i++) {
      const result = await rotate('app-db-alt');
      expect(result.code, result.stderr).toBe(0);
      versions.push((await fx.kv('alt')).version);
    }
    stop = true;
    await client;
    expect(failures).toEqual([]);
    expect(attempts).toBeGreaterThan(20);
    expect(usersSeen).toEqual(new Set([fx.users.a, fx.users.b]));
    expect(versions).toEqual([2, 3, 4, 5]);
    // After four rotations the first login is active again, with a new password.
    const latest = await fx.kv('alt');
    expect(latest.data.username).toBe(fx.users.a);
    expect(await loginProblem(fx.users.a, String(latest.data.password))).toBeUndefined();
  }, 90000);

  it('a failing target is visible in status and leaves the current value working', async () => {
    const bao = realOpenBao();
    const admin = await fx.kv('admin');
    const current = await fx.kv('single');
    await bao.admin.kvWrite('secret', fx.paths.admin, { ...admin.data, password: 'wrong' });
    try {
      const result = await rotate('app-db');
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('app-db: failed at set: target error 28P01');
      const entry = await rotationStatus(fx, 'app-db');
      expect(entry).toMatchObject({
        step: 'created',
        lastOutcome: 'failed',
        failures: 1,
        lastError: { step: 'set', message: 'target error 28P01' },
      });
      expect(await loginProblem(fx.users.single, String(current.data.password))).toBeUndefined();
    } finally {
      await bao.admin.kvWrite('secret', fx.paths.admin, admin.data);
    }
    // Fixed: the recorded run resumes and completes.
    await sleep(1200);
    const retry = await rotate('app-db');
    expect(retry.stdout).toContain('resumed an interrupted run');
    const after = await fx.kv('single');
    expect(after.version).toBe(current.version + 1);
    expect(await loginProblem(fx.users.single, String(after.data.password))).toBeUndefined();
  }, 60000);

  it('aborts without overwriting when the secret is edited during the rotation', async () => {
    const bao = realOpenBao();
    const before = await fx.kv('single');
    await killRotationAt(fx, 'app-db', 'set');
    // An operator resets the password by hand meanwhile (in KV and on the server).
    const manual = 'SetByHand1234567890';
    await bao.admin.kvWrite('secret', fx.paths.single, { ...before.data, password: manual });
    await sleep(1200);
    const result = await rotate('app-db');
    expect(result.stdout).toContain('app-db: aborted: the secret changed during the rotation');
    expect(result.code).toBe(1);
    const after = await fx.kv('single');
    expect(after.version).toBe(before.version + 1);
    expect(after.data.password).toBe(manual);
    // Rolled back to what KV says: the current value logs in.
    expect(await loginProblem(fx.users.single, manual)).toBeUndefined();
    expect((await fx.state('app-db'))?.run).toBeUndefined();
  }, 60000);
});

describe('two instances on one due rotation', () => {
  let fx: RotationFixture;
  beforeAll(async () => {
    fx = await setUpRotation(uniquePrefix('rot2'), {
      rotations: [
        '  - secret: api-key',
        '    every: 1d',
        '    generate: { key: apiKey, kind: token, length: 32, format: hex }',
      ].join('\n'),
    });
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('produces exactly one new version; the second run finds it done or locked', async () => {
    const before = await fx.kv('generated');
    const [one, two] = await Promise.all(
      [0, 1].map(() => runZsb(['rotate', '--due', '--config', fx.configFile], { cwd: fx.dir })),
    );
    expect(one?.code, one?.stderr).toBe(0);
    expect(two?.code, two?.stderr).toBe(0);
    const lines = [one?.stdout, two?.stdout].join('').trim().split('\n').sort();
    expect(lines.filter((l) => l.startsWith('api-key: rotated'))).toHaveLength(1);
    expect(
      lines.filter(
        (l) => l === 'api-key: not due' || l === 'api-key: another instance holds the lock',
      ),
    ).toHaveLength(1);
    const after = await fx.kv('generated');
    expect(after.version).toBe(before.version + 1);
    expect(after.data.client).toBe('ci');
    expect(String(after.data.apiKey)).toMatch(/^[0-9a-f]{64}$/);
    // Now it is not due: another --due run changes nothing.
    const again = await runZsb(['rotate', '--due', '--config', fx.configFile], { cwd: fx.dir });
    expect(again.stdout.trim()).toBe('api-key: not due');
    expect((await fx.kv('generated')).version).toBe(before.version + 1);
  }, 60000);
});
