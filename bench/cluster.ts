/**
 * Benchmark: the broker on a 3-node OpenBao raft cluster beside the single dev server, in
 * the same run (BENCHMARKS.md, "On an OpenBao cluster"), and the window without writes
 * after a leader SIGKILL as the broker's clients see it.
 *
 * One run starts `bao server -dev` and a 3-node raft cluster (static seal,
 * performance_multiplier = 1; src/dev/openbao-cluster.ts), a Zuul-like issuer, and one
 * broker per OpenBao in this process (the load generator shares the process: the numbers
 * compare the two OpenBao set-ups, not the broker's own ceiling, which bench/broker.ts
 * measures). Per target: KV fetches at full speed (autocannon, 16 connections), then at
 * 200 req/s. Then, on the cluster, `KILLS` times: 4 clients revoking (a ledger write each
 * time) and 4 fetching KV in a loop while the active node is SIGKILLed; the failed answers'
 * span is the window, and every failure's status is counted. Loopback only; every phase is
 * bounded in time and requests; every server is stopped at the end.
 *
 *   npx tsx bench/cluster.ts
 *   BENCH_SECONDS=N   length of a load phase (default 8)
 *   BENCH_KILLS=N     leader kills (default 3, at most 5)
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../src/config/load.js';
import { baoCall, type OpenBaoCluster, startOpenBaoCluster } from '../src/dev/openbao-cluster.js';
import { type DevOpenBao, startDevOpenBao } from '../src/dev/openbao-dev-server.js';
import { DEFAULT_ZUUL_TOKEN, ZuulIssuer } from '../src/dev/zuul-issuer.js';
import { createLogger, type RunningBroker, startBroker } from '../src/main.js';
import { createOpenBaoClient } from '../src/openbao/client.js';
import { type LoadResult, runAutocannon } from './support/load.js';
import { fixed, markdownTable } from './support/table.js';

const PHASE_SECONDS = Math.max(1, Number(process.env.BENCH_SECONDS ?? 8));
const KILLS = Math.min(5, Math.max(1, Number(process.env.BENCH_KILLS ?? 3)));
const AUDIENCE = DEFAULT_ZUUL_TOKEN.audience;
const STATE_PREFIX = 'zsb-bench';
const SECRET_PATH = 'zuul/bench/clouds';

const quiet = new Writable({
  write(_chunk, _encoding, callback) {
    callback();
  },
});

/** What the broker needs here: the secret, its ledger, its own token, autopilot (ADR 0012). */
const BROKER_ACL = `
path "secret/data/${SECRET_PATH}" { capabilities = ["read"] }
path "secret/data/${STATE_PREFIX}/*" { capabilities = ["create", "read", "update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-accessor" { capabilities = ["update"] }
path "sys/storage/raft/autopilot/state" { capabilities = ["read"] }
`;

const POLICY = `secrets:
  bench-clouds:
    kv: { mount: secret, path: ${SECRET_PATH} }
grants:
  - name: bench
    match: { tenant: scs }
    allow: [bench-clouds]
`;

async function brokerFor(
  name: string,
  addresses: readonly string[],
  rootToken: string,
  issuer: ZuulIssuer,
  dir: string,
): Promise<RunningBroker> {
  const admin = createOpenBaoClient({
    addresses,
    timeoutMs: 10000,
    maxConnections: 4,
    token: () => rootToken,
  });
  await admin.kvWrite('secret', SECRET_PATH, {
    username: 'ci',
    password: randomBytes(18).toString('base64url'),
  });
  await admin.putAclPolicy('zsb-bench-broker', BROKER_ACL);
  const token = await admin.createToken({
    policies: ['zsb-bench-broker'],
    ttlSeconds: 3600,
    orphan: true,
    noDefaultPolicy: true,
  });
  const tokenFile = path.join(dir, `${name}-token`);
  await writeFile(tokenFile, token.token, { mode: 0o600 });
  return startBroker(
    parseConfig({
      listen: { host: '127.0.0.1', port: 0 },
      issuers: [{ issuer: issuer.issuer, audience: AUDIENCE }],
      openbao: {
        addresses,
        auth: { method: 'token', tokenFile },
        statePrefix: STATE_PREFIX,
        timeoutMs: 5000,
      },
      policies: path.join(dir, 'policies'),
      watchPolicies: false,
      rotation: { enabled: false },
      audit: { file: path.join(dir, `${name}-audit.jsonl`) },
      limits: {
        perIdentity: { rate: 1_000_000, burst: 1_000_000 },
        global: { rate: 1_000_000, burst: 1_000_000 },
      },
      log: { level: 'warn' },
    }),
    { logger: createLogger('warn', quiet) },
  );
}

async function fetchLoad(broker: RunningBroker, token: string, rate?: number): Promise<LoadResult> {
  return runAutocannon({
    url: `${broker.url}/v1/fetch`,
    method: 'POST',
    body: JSON.stringify({ secrets: ['bench-clouds'] }),
    headersFor: () => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' }),
    connections: rate === undefined ? 16 : 8,
    durationSeconds: PHASE_SECONDS,
    maxRequests: 200_000,
    ...(rate === undefined ? {} : { overallRate: rate }),
    expectStatus: 200,
  });
}

interface Answer {
  readonly kind: 'revoke' | 'fetch';
  readonly status: number;
  readonly start: number;
  readonly end: number;
  readonly retryAfter: boolean;
}

/** One leader SIGKILL under 4 revoking and 4 fetching clients; the failed answers' span. */
async function killOnce(cluster: OpenBaoCluster, broker: RunningBroker, issuer: ZuulIssuer) {
  const answers: Answer[] = [];
  let running = true;
  const client = async (kind: Answer['kind'], build: string) => {
    const token = issuer.mint({ 'build-uuid': build });
    for (let i = 0; running && i < 100_000; i++) {
      const start = performance.now();
      try {
        const res = await fetch(`${broker.url}/v1/${kind}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(kind === 'fetch' ? { secrets: ['bench-clouds'] } : {}),
          signal: AbortSignal.timeout(15000),
        });
        await res.arrayBuffer();
        answers.push({
          kind,
          status: res.status,
          start,
          end: performance.now(),
          retryAfter: res.headers.has('retry-after'),
        });
      } catch {
        answers.push({ kind, status: 0, start, end: performance.now(), retryAfter: false });
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const clients = [
    ...Array.from({ length: 4 }, () => client('revoke', randomBytes(16).toString('hex'))),
    ...Array.from({ length: 4 }, () => client('fetch', randomBytes(16).toString('hex'))),
  ];
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const leader = await cluster.waitForActive();
  const killedAt = performance.now();
  await leader.kill('SIGKILL');
  await cluster.waitForActive(30000);
  const activeAfter = performance.now() - killedAt;
  await new Promise((resolve) => setTimeout(resolve, 3000));
  running = false;
  await Promise.all(clients);
  const span = (kind: Answer['kind']) => {
    const failed = answers.filter((a) => a.kind === kind && a.status !== 200);
    if (failed.length === 0) return { failed: 0, window: 0, all503: true };
    const from = Math.min(...failed.map((a) => a.start));
    const to = Math.max(...failed.map((a) => a.end));
    return {
      failed: failed.length,
      window: to - Math.max(from, killedAt),
      all503: failed.every((a) => a.status === 503 && a.retryAfter),
    };
  };
  const result = {
    node: leader.id,
    activeAfter,
    revoke: span('revoke'),
    fetch: span('fetch'),
    answers: answers.length,
  };
  // Back to three voters before the next kill.
  await leader.start();
  await waitForThreeVoters(cluster);
  return result;
}

async function waitForThreeVoters(cluster: OpenBaoCluster): Promise<void> {
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    const active = await cluster.activeNode();
    if (active) {
      const state = await baoCall(active.address, 'GET', 'sys/storage/raft/autopilot/state', {
        token: cluster.rootToken,
      }).catch(() => undefined);
      const data = state?.body.data as { healthy?: boolean; failure_tolerance?: number };
      if (data?.healthy === true && data.failure_tolerance === 1) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error('the cluster did not get back to three healthy voters within 60 s');
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'zsb-bench-cluster-'));
  const stops: Array<() => Promise<void>> = [];
  try {
    await mkdir(path.join(dir, 'policies'));
    await writeFile(path.join(dir, 'policies', 'bench.yaml'), POLICY);
    const issuer = await ZuulIssuer.start({ modulusLength: 2048 });
    stops.push(() => issuer.close());
    const single: DevOpenBao = await startDevOpenBao();
    stops.push(single.stop);
    const cluster = await startOpenBaoCluster();
    stops.push(cluster.stop);
    const singleBroker = await brokerFor('single', [single.address], single.rootToken, issuer, dir);
    stops.push(() => singleBroker.close());
    const clusterBroker = await brokerFor(
      'cluster',
      cluster.nodes.map((n) => n.address),
      cluster.rootToken,
      issuer,
      dir,
    );
    stops.push(() => clusterBroker.close());
    const token = issuer.mint(
      { 'build-uuid': randomBytes(16).toString('hex') },
      { ttlSeconds: 3600 },
    );

    const rows: string[][] = [];
    for (const [name, broker] of [
      ['single dev server', singleBroker],
      ['3-node raft cluster', clusterBroker],
    ] as const) {
      const full = await fetchLoad(broker, token);
      const paced = await fetchLoad(broker, token, 200);
      rows.push([
        name,
        fixed(full.okRps, 0),
        fixed(full.preciseP50, 2),
        fixed(full.preciseP99, 2),
        fixed(paced.preciseP99, 2),
        String(
          Object.entries(full.statuses)
            .filter(([code]) => code !== '200')
            .reduce((sum, [, n]) => sum + n, full.errors),
        ),
      ]);
    }
    process.stdout.write(
      `\nKV fetches through the broker (${PHASE_SECONDS} s per phase, OpenBao ${cluster.version}, ${os.cpus().length} cores)\n\n`,
    );
    process.stdout.write(
      `${markdownTable(
        ['OpenBao', 'fetches/s (16 conn.)', 'p50 ms', 'p99 ms', 'p99 ms at 200/s', 'non-200'],
        rows,
      )}\n`,
    );

    const kills: string[][] = [];
    for (let i = 0; i < KILLS; i++) {
      const k = await killOnce(cluster, clusterBroker, issuer);
      kills.push([
        String(i + 1),
        k.node,
        fixed(k.activeAfter / 1000, 2),
        `${k.revoke.failed} in ${fixed(k.revoke.window / 1000, 2)} s`,
        `${k.fetch.failed} in ${fixed(k.fetch.window / 1000, 2)} s`,
        k.revoke.all503 && k.fetch.all503 ? 'yes' : 'NO',
      ]);
    }
    process.stdout.write('\nLeader SIGKILL: 4 clients revoking (ledger writes), 4 fetching KV\n\n');
    process.stdout.write(
      `${markdownTable(
        [
          'kill',
          'killed',
          'new leader takes writes after (s)',
          'failed revokes (window)',
          'failed fetches (window)',
          'all 503 + Retry-After',
        ],
        kills,
      )}\n`,
    );
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
