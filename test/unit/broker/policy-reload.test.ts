/**
 * The policy store's reload off the serving thread (issue #20, ADR 0018): files are
 * checked in a worker, the new set is put together in slices, and the old set serves
 * until the new one is complete. What a caller of the store can see: which set serves
 * while a reload runs, that the event loop keeps running meanwhile, that the set is the
 * one the synchronous loader makes, and that every failure keeps the old set.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPolicyStore } from '../../../src/broker/policy-store.js';
import { decide } from '../../../src/policy/decide.js';
import { formatProblem, loadPolicyDir } from '../../../src/policy/load.js';
import type { PolicySet } from '../../../src/policy/types.js';
import type { WorkerFault } from '../../support/faulty-policy-worker.js';

const FAULTY_WORKER = new URL('../../support/faulty-policy-worker.ts', import.meta.url);
const ALL_KINDS = ['kv', 'database', 'pki', 'token'] as const;

/** `count` grants in files of 250, each grant with its own project and a ttl of `ttl`. */
function grantFiles(count: number, ttl: string): Record<string, string> {
  const files: Record<string, string> = {
    'secrets.yaml': [
      'secrets:',
      '  deploy: { kv: { mount: secret, path: "zuul/{tenant}/{project}/deploy" } }',
      '  shared: { kv: { mount: secret, path: zuul/shared } }',
      '',
    ].join('\n'),
  };
  for (let f = 0; f * 250 < count; f++) {
    const lines = ['grants:'];
    for (let i = f * 250; i < Math.min(count, (f + 1) * 250); i++) {
      lines.push(
        `  - name: g${i}`,
        `    match: { tenant: t${i % 10}, project: github.com/org/repo${i}, pipeline: [post, promote], job: "deploy-*" }`,
        `    allow: [deploy${i % 3 === 0 ? ', shared' : ''}]`,
        `    ttl: ${ttl}`,
      );
    }
    files[`grants-${f}.yaml`] = `${lines.join('\n')}\n`;
  }
  return files;
}

/** Every kind of definition, for comparing the worker's set with the loader's. */
const RICH = {
  'a.yaml': `
zuul:
  configProjects:
    scs: [github.com/SovereignCloudStack/zuul-config]
secrets:
  clouds:
    kv: { mount: secret, path: zuul/scs/clouds }
    render: { format: clouds.yaml, cloud: c, authUrl: "https://keystone.example/v3" }
  deploy-key: { kv: { mount: secret, path: "zuul/{tenant}/{project}/deploy", keys: [private_key] } }
  admin: { kv: { mount: secret, path: zuul/scs/admin } }
  db: { database: { mount: database, role: ci } }
  cert: { pki: { mount: pki, role: ci, commonName: "{job}.ci.example" } }
  child: { token: { policies: [ci-read, ci-write] } }
grants:
  - name: deploy
    match:
      tenant: scs
      project: [github.com/SovereignCloudStack/standards, github.com/SovereignCloudStack/docs]
      pipeline: [post, promote]
      job: "*-deploy"
    allow: [clouds, db, deploy-key]
    ttl: 30m
    wrap: required
`,
  'b.yaml': `
grants:
  - name: certs
    match: { tenant: scs, job: "cert-*" }
    allow: [cert, child]
    wrap: never
rotations:
  - secret: clouds
    every: 7d
    jitter: 1h
    window: "01:00-05:00"
    generate: { key: password, kind: password, length: 40 }
  - secret: admin
    schedule: "@daily"
    generate: { key: token, kind: token, format: hex }
`,
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-reload-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
}

/** Every location of a set read out, so that sets compare by line and column too. */
function readOut(set: PolicySet): unknown {
  return JSON.parse(
    JSON.stringify(set, (_key, value: unknown) =>
      value instanceof Map ? Object.fromEntries(value) : value instanceof Set ? [...value] : value,
    ),
  );
}

const SUBJECT = {
  issuer: 'https://zuul.example',
  tenant: 't3',
  project: 'github.com/org/repo13',
  secret: 'openbao-id',
  pipeline: 'post',
  job: 'deploy-site',
  playbook: 'playbooks/deploy.yaml',
  build: 'b1',
};

describe('policy reload off the serving thread', () => {
  it('serves the old set while the worker checks and until the new set is complete, then swaps once', async () => {
    await write(grantFiles(2000, '15m'));
    // The worker answers the reload's check late: the serving thread must go on meanwhile.
    const store = createPolicyStore(dir, {
      maxTtlSeconds: 3600,
      loadWorker: { entry: FAULTY_WORKER, workerData: { fault: 'slow', after: 0 } },
    });
    expect(await store.reload()).toEqual({ ok: true });
    const old = store.current();
    expect(old?.grants).toHaveLength(2000);

    await write(grantFiles(2000, '20m'));
    let reloading = true;
    const seen: (PolicySet | undefined)[] = [];
    let turns = 0;
    // What a request arriving on any turn of the event loop during the reload would see.
    const sample = (): void => {
      seen.push(store.current());
      turns++;
      if (reloading) setImmediate(sample);
    };
    setImmediate(sample);
    const result = await store.reload();
    reloading = false;
    expect(result).toEqual({ ok: true });
    const next = store.current();
    expect(next).not.toBe(old);
    // The event loop kept turning while the worker checked (a turn is far shorter than
    // SLOW_CHECK_MS): a request arriving then was served, by the old set.
    expect(turns).toBeGreaterThan(100);
    // Old until the swap, new after it, never anything else and never back.
    const firstNew = seen.indexOf(next);
    const before = firstNew === -1 ? seen : seen.slice(0, firstNew);
    expect(before.length).toBeGreaterThan(100);
    expect(before.every((s) => s === old)).toBe(true);
    if (firstNew !== -1) expect(seen.slice(firstNew).every((s) => s === next)).toBe(true);
    // The new set is complete when it serves: every grant, indexed, with the new ttl.
    expect(next?.grants).toHaveLength(2000);
    const decision = next === undefined ? undefined : decide(next, SUBJECT, ['deploy']);
    expect(decision).toMatchObject({ allowed: true });
    if (decision?.allowed) expect(decision.secrets.get('deploy')?.ttlSeconds).toBe(1200);
  }, 30_000);

  it('builds the same set as the synchronous loader, locations included', async () => {
    await write(RICH);
    const store = createPolicyStore(dir, { maxTtlSeconds: 3600 * 24, supportedKinds: ALL_KINDS });
    // The first load runs in-process; every file changed, the worker makes the whole set.
    expect(await store.reload()).toEqual({ ok: true });
    await write({
      'a.yaml': `${RICH['a.yaml']}# reviewed\n`,
      'b.yaml': `${RICH['b.yaml']}# reviewed\n`,
    });
    expect(await store.reload()).toEqual({ ok: true });
    const direct = await loadPolicyDir(dir, {
      maxTtlSeconds: 3600 * 24,
      supportedKinds: ALL_KINDS,
    });
    if (!direct.ok) throw new Error(direct.problems.map(formatProblem).join('\n'));
    const served = store.current();
    if (served === undefined) throw new Error('no set');
    expect(readOut(served)).toEqual(readOut(direct.set));
    expect(served.grants[0]?.location).toEqual({ file: 'a.yaml', line: 15, column: 5 });
    expect(served.grants[0]?.matchLocations?.job).toEqual({ file: 'a.yaml', line: 20, column: 12 });
    expect(served.rotations[1]?.location).toEqual({ file: 'b.yaml', line: 13, column: 5 });
    // Immutable all the way down, like the loader's.
    expect(Object.isFrozen(served.grants[0]?.match.project)).toBe(true);
    expect(Object.isFrozen(served.secrets.get('clouds')?.render)).toBe(true);
    expect(Object.isFrozen(served.rotations[0]?.generate)).toBe(true);

    // A second file changed: its parts come over again, the other file's stay the same objects.
    const unchanged = served.grants[0];
    await write({ 'b.yaml': `${RICH['b.yaml'].replace('every: 7d', 'every: 8d')}# reviewed\n` });
    expect(await store.reload()).toEqual({ ok: true });
    expect(store.current()?.grants[0]).toBe(unchanged);
    expect(store.current()?.rotations[0]?.everySeconds).toBe(8 * 86400);
  });

  it('rejects a bad file with the loader’s file:line:col problems and keeps the old set', async () => {
    await write(grantFiles(500, '15m'));
    const store = createPolicyStore(dir, { maxTtlSeconds: 3600 });
    expect(await store.reload()).toEqual({ ok: true });
    const old = store.current();
    await write({
      'grants-1.yaml': 'grants:\n  - name: bad\n    match: { tenant: t1 }\n    allow: [nothing]\n',
      'grants-0.yaml':
        'grants:\n  - name: g0\n    match: { tenant: t0 }\n    allow: [deploy]\n    ttl: 2h\n',
    });
    const result = await store.reload();
    const direct = await loadPolicyDir(dir, { maxTtlSeconds: 3600, supportedKinds: ['kv'] });
    expect(direct.ok).toBe(false);
    expect(result).toEqual({
      ok: false,
      problems: direct.ok ? [] : direct.problems.map(formatProblem),
    });
    expect(result.ok ? [] : result.problems).toEqual([
      'grants-0.yaml:5:10: grants[0].ttl: 2h exceeds the maximum of 1h (config maxTtlSeconds)',
      "grants-1.yaml:4:13: grant 'bad' allows unknown secret 'nothing'",
    ]);
    expect(store.current()).toBe(old);
    expect(store.status()).toMatchObject({ status: 'degraded' });
    expect(store.status().detail).toContain('grants-0.yaml:5:10:');
  });

  it('runs one load at a time; calls made while one waits to start share it', async () => {
    await write(grantFiles(500, '15m'));
    const store = createPolicyStore(dir, { maxTtlSeconds: 3600 });
    const first = store.reload();
    // The first load has started (it is reading the directory or waiting for the worker).
    await new Promise((resolve) => setImmediate(resolve));
    await write(grantFiles(500, '20m'));
    const second = store.reload();
    const third = store.reload();
    const fourth = store.reload();
    expect(third).toBe(second);
    expect(fourth).toBe(second);
    expect(second).not.toBe(first);
    expect(await Promise.all([first, second, third, fourth])).toEqual([
      { ok: true },
      { ok: true },
      { ok: true },
      { ok: true },
    ]);
    // The shared load read the directory after the change.
    expect(store.current()?.grants[0]?.ttlSeconds).toBe(1200);
  });

  it.each<{ fault: WorkerFault; expected: RegExp }>([
    {
      fault: 'exit',
      expected: /policy files not checked: the policy load worker stopped \(exit code 3\)/,
    },
    {
      fault: 'throw',
      expected: /policy files not checked: injected fault in the policy load worker/,
    },
    {
      fault: 'hang',
      expected: /policy files not checked: the policy load worker did not answer within 5000 ms/,
    },
  ])(
    'fails closed when the worker fails ($fault): the old set serves, the next reload recovers',
    async ({ fault, expected }) => {
      await write(grantFiles(250, '15m'));
      const store = createPolicyStore(dir, {
        maxTtlSeconds: 3600,
        // Only a hung worker needs a short timeout; it also bounds the worker's start-up
        // (tsx loading the sources), which takes seconds on a busy machine.
        loadWorker: {
          entry: FAULTY_WORKER,
          workerData: { fault, after: 1 },
          ...(fault === 'hang' ? { timeoutMs: 5000 } : {}),
        },
      });
      // The first load runs in-process, without the worker: a start does not depend on it.
      expect(await store.reload()).toEqual({ ok: true });
      // The worker's first check, answered right.
      expect(await store.reload()).toEqual({ ok: true });
      const old = store.current();

      await write(grantFiles(250, '20m'));
      const failed = await store.reload();
      expect(failed.ok).toBe(false);
      expect(failed.ok ? '' : failed.problems.join('\n')).toMatch(expected);
      expect(store.current()).toBe(old);
      expect(store.status().status).toBe('degraded');
      expect(store.status().detail).toMatch(expected);

      // A new worker takes the next reload.
      expect(await store.reload()).toEqual({ ok: true });
      expect(store.current()?.grants[0]?.ttlSeconds).toBe(1200);
      expect(store.status().status).toBe('ok');
    },
    30_000,
  );
});
