/**
 * Benchmark: the broker against a real OpenBao dev server on loopback, with the issue's
 * targets (≥ 0.8× direct KV throughput at the same concurrency; ≤ 2 ms added p99 at
 * 200 req/s; a job's fetch faster than OpenBao's own JWT login + read; ≥ 10,000 invalid
 * tokens rejected/s with zero OpenBao calls; broker RSS ≤ 100 MB).
 *
 * One run starts `bao server -dev` (.venv-bao), a Zuul-like issuer with a 4096-bit key,
 * and the broker as a child process (`zsb serve`), then measures side by side: direct KV
 * v2 reads with a static token, OpenBao JWT login + read, broker fetches, 200 req/s
 * (autocannon's overallRate, and a paced open loop), an invalid-token flood against a
 * second broker that reaches OpenBao only through a counting proxy, and the same flood
 * against a bare node:http server (this machine's ceiling). Results: BENCHMARKS.md.
 * Everything is on 127.0.0.1; every load phase is bounded in time and in requests.
 *
 *   npx tsx bench/broker.ts
 *   BENCH_SECONDS=N        length of a phase (default 10; loops use 0.6 N and 0.4 N)
 *   BENCH_CPU_PROF_DIR=D   run the broker processes with `node --cpu-prof` into D
 *   BENCH_BROKER_CLI=F     run a compiled CLI (e.g. dist/cli/index.js) instead of tsx
 *   BENCH_BROKER_NODE_ARGS="…"  node flags for the broker processes (e.g. the image's heap caps)
 *   BENCH_BASELINE_CLI=F   also run a baseline broker (a compiled CLI of another checkout)
 *                          beside the current one (BENCH_BROKER_CLI, required then), and
 *                          measure 3a, 3aL, 3a1, 3b and 5d on both, interleaved (ABBA), with
 *                          CPU ms/req and the ratio current / baseline (support/broker-ab.ts)
 *   BENCH_AB_ROUNDS=N      rounds of that comparison (default 2)
 *   BENCH_AB_ONLY=1        run only the comparison, not the scenarios of the main table
 *
 * On a shared machine each phase first waits (bounded) for other processes to go quiet,
 * and the table reports the CPU other processes used during every phase.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { type DevOpenBao, startDevOpenBao } from '../src/dev/openbao-dev-server.js';
import { DEFAULT_ZUUL_TOKEN, ZuulIssuer } from '../src/dev/zuul-issuer.js';
import { type AbBroker, type AbScenario, abReport, runInterleaved } from './support/broker-ab.js';
import {
  type BrokerProcess,
  prepareBenchBrokers,
  startBrokerProcess,
} from './support/broker-process.js';
import { startBareServer } from './support/calibration.js';
import {
  expectOk,
  type LoadResult,
  request,
  runAutocannon,
  runLoop,
  runPaced,
  StepError,
} from './support/load.js';
import { BENCH_SECRET_NAMES, BENCH_SECRETS, JWT_ROLE } from './support/openbao-setup.js';
import { findPid, otherCores, type ProcessUsage, UsageSampler } from './support/procstat.js';
import { type CountingProxy, startCountingProxy } from './support/proxy.js';
import { fixed, markdownTable, megabytes, percent, thousands } from './support/table.js';

const PHASE_SECONDS = positiveNumber(process.env.BENCH_SECONDS, 10);
const LOOP_SECONDS = PHASE_SECONDS * 0.6;
const SINGLE_JOB_SECONDS = PHASE_SECONDS * 0.4;
const CONNECTIONS = 32;
const RATE = 200;
const RATE_CONNECTIONS = 8;
/** Distinct job tokens (one per build) handed to connections and iterations in turn. */
const TOKEN_POOL = 64;
/** Upper bound on requests in any phase, far above what 2 cores can do in its time. */
const MAX_REQUESTS = 2_000_000;
/** The whole run is abandoned after this long, whatever happens. */
const WATCHDOG_MS = 15 * 60 * 1000;
const BROKER_LOG_LEVEL = 'warn';
/** Before a phase: wait while other processes use more than this many cores... */
const QUIET_CORES = 0.25;
/** ...but at most this long per phase, and this long over the whole run. */
const QUIET_WAIT_PHASE_MS = 5000;
const QUIET_WAIT_TOTAL_MS = 20000;
const AUDIENCE = DEFAULT_ZUUL_TOKEN.audience;
const ONE = JSON.stringify({ secrets: [BENCH_SECRET_NAMES[0]] });
const THREE = JSON.stringify({ secrets: BENCH_SECRET_NAMES });

function positiveNumber(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && Number.isFinite(n) && n > 0 ? n : fallback;
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface Row {
  readonly id: string;
  readonly label: string;
  readonly load: string;
  readonly result: LoadResult;
  /** The status every response should have (200, or 401 for the flood). */
  readonly expected: string;
  readonly usage: Readonly<Record<string, ProcessUsage>>;
}

interface Target {
  readonly what: string;
  readonly value: string;
  readonly target: string;
  readonly met: boolean;
}

function cpuModel(): string {
  const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return match?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
}

function packageVersion(name: string): string {
  const require = createRequire(import.meta.url);
  const manifest: unknown = JSON.parse(
    readFileSync(require.resolve(`${name}/package.json`), 'utf8'),
  );
  return isRecord(manifest) && typeof manifest.version === 'string' ? manifest.version : '?';
}

/** The bad-signature flood: real tokens (known kid, valid claims) with a random signature. */
function badSignatureToken(issuer: ZuulIssuer): string {
  const [header, payload] = issuer.mint({ aud: AUDIENCE }).split('.');
  return `${header}.${payload}.${randomBytes(512).toString('base64url')}`;
}

/** Garbage: random base64url, sometimes JWT-shaped, never decodable. */
function garbageToken(index: number): string {
  const junk = () => randomBytes(300).toString('base64url');
  return index % 2 === 0 ? junk() : `${junk()}.${junk()}.${junk()}`;
}

/** V8 heap figures from the broker's own /metrics (prom-client default metrics). */
async function brokerHeap(b: BrokerProcess): Promise<Record<string, number>> {
  const text = await (await fetch(`${b.url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const name of [
    'zsb_process_resident_memory_bytes',
    'zsb_nodejs_heap_size_total_bytes',
    'zsb_nodejs_heap_size_used_bytes',
    'zsb_nodejs_external_memory_bytes',
  ]) {
    const match = new RegExp(`^${name} (\\S+)`, 'm').exec(text);
    if (match?.[1] !== undefined) out[name.replace(/^zsb_/, '')] = Number(match[1]);
  }
  return out;
}

function clientToken(body: string): string {
  const parsed: unknown = JSON.parse(body);
  const auth = isRecord(parsed) ? parsed.auth : undefined;
  if (!isRecord(auth) || typeof auth.client_token !== 'string') throw new StepError(-1);
  return auth.client_token;
}

async function main(): Promise<void> {
  const started = Date.now();
  const cleanup: Array<() => Promise<unknown>> = [];
  const runCleanup = async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  };
  const watchdog = setTimeout(() => {
    log(`watchdog: the run took longer than ${WATCHDOG_MS / 1000} s; stopping`);
    void runCleanup().finally(() => process.exit(2));
  }, WATCHDOG_MS);
  watchdog.unref();

  try {
    const workDir = await mkdtemp(path.join(os.tmpdir(), 'zsb-bench-'));
    cleanup.push(() => rm(workDir, { recursive: true, force: true }));
    const profileDir = process.env.BENCH_CPU_PROF_DIR;
    const nodeArgs = [
      ...(process.env.BENCH_BROKER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
      ...(profileDir === undefined
        ? []
        : ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profileDir)}`]),
    ];
    const compiledCli = process.env.BENCH_BROKER_CLI;
    const baselineCli = process.env.BENCH_BASELINE_CLI;
    if (baselineCli !== undefined && compiledCli === undefined) {
      throw new Error('BENCH_BASELINE_CLI needs BENCH_BROKER_CLI: compare compiled with compiled');
    }
    const abOnly = process.env.BENCH_AB_ONLY === '1';
    if (abOnly && baselineCli === undefined)
      throw new Error('BENCH_AB_ONLY needs BENCH_BASELINE_CLI');

    log('starting OpenBao dev server and a Zuul-like issuer (RSA 4096)');
    const bao: DevOpenBao = await startDevOpenBao();
    cleanup.push(() => bao.stop());
    const baoPort = new URL(bao.address).port;
    const baoPid = findPid(`-dev-listen-address=127.0.0.1:${baoPort}`);
    if (baoPid === undefined) throw new Error('cannot find the OpenBao process');
    const issuer = await ZuulIssuer.start({ modulusLength: 4096 });
    cleanup.push(() => issuer.close());

    const { prepared, shared } = await prepareBenchBrokers(workDir, bao, issuer, AUDIENCE);
    const brokerOptions = {
      ...shared,
      logLevel: BROKER_LOG_LEVEL,
      nodeArgs,
      compiledCli,
    } as const;
    const broker: BrokerProcess = await startBrokerProcess({
      ...brokerOptions,
      name: 'broker',
      openbaoAddress: bao.address,
    });
    cleanup.push(() => broker.stop());

    log(`minting ${TOKEN_POOL} job tokens`);
    const tokens = Array.from({ length: TOKEN_POOL }, () => issuer.mint({ aud: AUDIENCE }));
    const tokenAt = (i: number) => tokens[i % TOKEN_POOL] ?? '';

    const directUrl = (kvPath: string) => `${bao.address}/v1/secret/data/${kvPath}`;
    const firstPath = BENCH_SECRETS[BENCH_SECRET_NAMES[0] ?? 'bench-clouds'];
    const allPaths = Object.values(BENCH_SECRETS);
    const directHeaders = () => ({ 'X-Vault-Token': prepared.readToken });
    const brokerHeaders = (i: number) => ({
      authorization: `Bearer ${tokenAt(i)}`,
      'content-type': 'application/json',
    });
    const fetchUrl = (b: BrokerProcess) => `${b.url}/v1/fetch`;

    // Sanity: the broker serves the same values a direct read returns, and JWT login works.
    const viaBroker: unknown = await (
      await fetch(fetchUrl(broker), { method: 'POST', headers: brokerHeaders(0), body: THREE })
    ).json();
    for (const [name, kvPath] of Object.entries(BENCH_SECRETS)) {
      const direct: unknown = await (
        await fetch(directUrl(kvPath), { headers: directHeaders() })
      ).json();
      const directData = isRecord(direct) && isRecord(direct.data) ? direct.data.data : undefined;
      const secrets = isRecord(viaBroker) ? viaBroker.secrets : undefined;
      const entry = isRecord(secrets) ? secrets[name] : undefined;
      if (!isRecord(entry) || JSON.stringify(entry.data) !== JSON.stringify(directData)) {
        throw new Error(`sanity check failed: broker and OpenBao disagree on ${name}`);
      }
    }
    const login = await fetch(`${bao.address}/v1/auth/jwt/login`, {
      method: 'POST',
      body: JSON.stringify({ role: JWT_ROLE, jwt: tokenAt(0) }),
    });
    clientToken(await login.text());

    const rows: Row[] = [];
    let quietBudget = QUIET_WAIT_TOTAL_MS;
    const waitQuiet = async (pids: Readonly<Record<string, number>>) => {
      const phaseStart = Date.now();
      for (;;) {
        const busy = await otherCores(Object.values(pids), 500);
        const waited = Date.now() - phaseStart;
        if (busy <= QUIET_CORES || waited >= QUIET_WAIT_PHASE_MS || waited >= quietBudget) {
          quietBudget -= waited;
          if (busy > QUIET_CORES) log(`  other processes still use ${fixed(busy, 2)} cores`);
          return;
        }
      }
    };
    const measure = async (
      row: Omit<Row, 'result' | 'usage'>,
      pids: Readonly<Record<string, number>>,
      run: () => Promise<LoadResult>,
    ): Promise<LoadResult> => {
      await waitQuiet(pids);
      log(`${row.id} ${row.label} (${row.load})`);
      const sampler = new UsageSampler(pids);
      sampler.start();
      const result = await run();
      rows.push({ ...row, result, usage: sampler.stop() });
      return result;
    };
    const mainPids = { broker: broker.pid, openbao: baoPid, bench: process.pid };
    const autocannonLoad = `autocannon c=${CONNECTIONS}, ${PHASE_SECONDS} s`;
    const loopLoad = (c: number, s: number) => `loop c=${c}, ${fixed(s, 0)} s`;

    // Loop iterations: one job's whole fetch each.
    const directIteration = async (agent: http.Agent) => {
      expectOk(
        await request(agent, new URL(directUrl(firstPath)), {
          method: 'GET',
          headers: directHeaders(),
        }),
      );
    };
    const brokerIteration =
      (body: string) => async (agent: http.Agent, _worker: number, i: number) => {
        expectOk(
          await request(agent, new URL(fetchUrl(broker)), {
            method: 'POST',
            headers: brokerHeaders(i),
            body,
          }),
        );
      };
    const jwtIteration =
      (paths: readonly string[]) => async (agent: http.Agent, _worker: number, i: number) => {
        const loginAnswer = expectOk(
          await request(agent, new URL(`${bao.address}/v1/auth/jwt/login`), {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ role: JWT_ROLE, jwt: tokenAt(i) }),
          }),
        );
        const token = clientToken(loginAnswer.body);
        // The reads after login run in parallel: the most favourable way for this baseline.
        await Promise.all(
          paths.map(async (kvPath) =>
            expectOk(
              await request(agent, new URL(directUrl(kvPath)), {
                method: 'GET',
                headers: { 'X-Vault-Token': token },
              }),
            ),
          ),
        );
      };

    // The requests of the autocannon phases, and how hard they are sent.
    const directRead = { url: directUrl(firstPath), headersFor: directHeaders };
    const brokerFetch = (body: string) => ({
      url: fetchUrl(broker),
      method: 'POST' as const,
      body,
      headersFor: brokerHeaders,
    });
    const saturating = {
      connections: CONNECTIONS,
      durationSeconds: PHASE_SECONDS,
      expectStatus: 200,
      maxRequests: MAX_REQUESTS,
    };
    const atRate = {
      connections: RATE_CONNECTIONS,
      overallRate: RATE,
      durationSeconds: PHASE_SECONDS,
      expectStatus: 200,
      maxRequests: RATE * PHASE_SECONDS + RATE,
    };

    log('warm-up (not reported)');
    const warm = { ...saturating, durationSeconds: 2 };
    await runAutocannon({ ...warm, ...directRead });
    await runAutocannon({ ...warm, ...brokerFetch(ONE) });
    await runLoop({
      concurrency: 4,
      durationSeconds: 1,
      maxIterations: 10000,
      iteration: jwtIteration([firstPath]),
    });

    // The same-run comparison with a baseline build (BENCH_BASELINE_CLI), interleaved.
    let comparison: string | undefined;
    if (baselineCli !== undefined) {
      const baseline = await startBrokerProcess({
        ...brokerOptions,
        compiledCli: baselineCli,
        name: 'broker-baseline',
        openbaoAddress: bao.address,
      });
      cleanup.push(() => baseline.stop());
      const abFetch = (b: BrokerProcess, body: string) => ({
        url: fetchUrl(b),
        method: 'POST' as const,
        body,
        headersFor: brokerHeaders,
      });
      const abIteration =
        (b: BrokerProcess, body: string) => async (agent: http.Agent, i: number) => {
          expectOk(
            await request(agent, new URL(fetchUrl(b)), {
              method: 'POST',
              headers: brokerHeaders(i),
              body,
            }),
          );
        };
      const abLoop = (concurrency: number, seconds: number) => (b: BrokerProcess) =>
        runLoop({
          concurrency,
          durationSeconds: seconds,
          maxIterations: MAX_REQUESTS,
          iteration: (agent, _worker, i) => abIteration(b, ONE)(agent, i),
        });
      const scenarios: AbScenario[] = [
        {
          id: '3a',
          label: 'broker POST /v1/fetch, 1 secret',
          load: autocannonLoad,
          run: (b) => runAutocannon({ ...abFetch(b, ONE), ...saturating }),
        },
        {
          id: '3aL',
          label: 'broker fetch, 1 secret',
          load: loopLoad(CONNECTIONS, LOOP_SECONDS),
          run: abLoop(CONNECTIONS, LOOP_SECONDS),
        },
        {
          id: '3a1',
          label: 'broker fetch, 1 secret',
          load: loopLoad(1, SINGLE_JOB_SECONDS),
          run: abLoop(1, SINGLE_JOB_SECONDS),
        },
        {
          id: '3b',
          label: 'broker POST /v1/fetch, 3 secrets',
          load: autocannonLoad,
          run: (b) => runAutocannon({ ...abFetch(b, THREE), ...saturating }),
        },
        {
          id: '5d',
          label: 'broker fetch, 1 secret, steady rate',
          load: `paced ${RATE} req/s (open loop), ${PHASE_SECONDS} s`,
          run: (b) =>
            runPaced({
              ratePerSecond: RATE,
              durationSeconds: PHASE_SECONDS,
              maxInFlight: 256,
              send: abIteration(b, ONE),
            }),
        },
      ];
      const brokers: [AbBroker, AbBroker] = [
        { name: 'baseline', label: baselineCli, process: baseline },
        { name: 'current', label: compiledCli ?? 'src/', process: broker },
      ];
      log('A/B warm-up of both brokers (not reported)');
      for (const b of brokers) await runAutocannon({ ...warm, ...abFetch(b.process, ONE) });
      const samples = await runInterleaved({
        brokers,
        scenarios,
        rounds: positiveNumber(process.env.BENCH_AB_ROUNDS, 2),
        otherPids: { openbao: baoPid, bench: process.pid },
        before: waitQuiet,
        log,
      });
      await baseline.stop();
      comparison = abReport(brokers, scenarios, samples);
      if (abOnly) {
        process.stdout.write(
          `${comparison}\nmachine: ${os.availableParallelism()} cores, ${cpuModel()}; Node ${process.version}; ` +
            `OpenBao ${bao.version}; node flags: ${nodeArgs.join(' ') || "Node's defaults"}; ` +
            `run took ${fixed((Date.now() - started) / 1000, 0)} s; load average ${os
              .loadavg()
              .map((l) => fixed(l, 2))
              .join(' ')}\n`,
        );
        return;
      }
    }

    // 1 and 3: same concurrency, same duration.
    const direct = await measure(
      { id: '1', label: 'direct KV v2 read, static token', load: autocannonLoad, expected: '200' },
      mainPids,
      () => runAutocannon({ ...directRead, ...saturating }),
    );
    const brokerOne = await measure(
      { id: '3a', label: 'broker POST /v1/fetch, 1 secret', load: autocannonLoad, expected: '200' },
      mainPids,
      () => runAutocannon({ ...brokerFetch(ONE), ...saturating }),
    );
    const brokerThree = await measure(
      {
        id: '3b',
        label: 'broker POST /v1/fetch, 3 secrets',
        load: autocannonLoad,
        expected: '200',
      },
      mainPids,
      () => runAutocannon({ ...brokerFetch(THREE), ...saturating }),
    );

    // 5: a fixed rate well below saturation.
    const rateLoad = `autocannon ${RATE} req/s, c=${RATE_CONNECTIONS}, ${PHASE_SECONDS} s`;
    const directAtRate = await measure(
      { id: '5a', label: 'direct KV v2 read at fixed rate', load: rateLoad, expected: '200' },
      mainPids,
      () => runAutocannon({ ...directRead, ...atRate }),
    );
    const brokerAtRate = await measure(
      { id: '5b', label: 'broker fetch, 1 secret, fixed rate', load: rateLoad, expected: '200' },
      mainPids,
      () => runAutocannon({ ...brokerFetch(ONE), ...atRate }),
    );

    // 5 again at a steady rate: one request every 5 ms, latency from the planned start.
    const pacedLoad = `paced ${RATE} req/s (open loop), ${PHASE_SECONDS} s`;
    const paced = (send: (agent: http.Agent, i: number) => Promise<void>) => () =>
      runPaced({ ratePerSecond: RATE, durationSeconds: PHASE_SECONDS, maxInFlight: 256, send });
    const directPaced = await measure(
      { id: '5c', label: 'direct KV v2 read at steady rate', load: pacedLoad, expected: '200' },
      mainPids,
      paced((agent) => directIteration(agent)),
    );
    const brokerPaced = await measure(
      { id: '5d', label: 'broker fetch, 1 secret, steady rate', load: pacedLoad, expected: '200' },
      mainPids,
      paced((agent, i) => brokerIteration(ONE)(agent, 0, i)),
    );

    // 2 vs 3 with the same client: a job's whole fetch, chained requests, fixed concurrency.
    // JWT logins create OpenBao tokens and leases: they run last so they cannot slow the rest.
    const loops: Record<string, LoadResult> = {};
    const loopPhase = async (
      id: string,
      label: string,
      concurrency: number,
      seconds: number,
      iteration: (agent: http.Agent, worker: number, i: number) => Promise<void>,
    ) => {
      loops[id] = await measure(
        { id, label, load: loopLoad(concurrency, seconds), expected: '200' },
        mainPids,
        () =>
          runLoop({
            concurrency,
            durationSeconds: seconds,
            maxIterations: MAX_REQUESTS,
            iteration,
          }),
      );
    };
    await loopPhase(
      '1L',
      'direct KV read (loop calibration)',
      CONNECTIONS,
      LOOP_SECONDS,
      directIteration,
    );
    await loopPhase(
      '3aL',
      'broker fetch, 1 secret',
      CONNECTIONS,
      LOOP_SECONDS,
      brokerIteration(ONE),
    );
    await loopPhase(
      '3bL',
      'broker fetch, 3 secrets',
      CONNECTIONS,
      LOOP_SECONDS,
      brokerIteration(THREE),
    );
    await loopPhase('3a1', 'broker fetch, 1 secret', 1, SINGLE_JOB_SECONDS, brokerIteration(ONE));
    await loopPhase(
      '3b1',
      'broker fetch, 3 secrets',
      1,
      SINGLE_JOB_SECONDS,
      brokerIteration(THREE),
    );
    await loopPhase(
      '2aL',
      'OpenBao JWT login + 1 read',
      CONNECTIONS,
      LOOP_SECONDS,
      jwtIteration([firstPath]),
    );
    await loopPhase(
      '2bL',
      'OpenBao JWT login + 3 reads',
      CONNECTIONS,
      LOOP_SECONDS,
      jwtIteration(allPaths),
    );
    await loopPhase(
      '2a1',
      'OpenBao JWT login + 1 read',
      1,
      SINGLE_JOB_SECONDS,
      jwtIteration([firstPath]),
    );
    await loopPhase(
      '2b1',
      'OpenBao JWT login + 3 reads',
      1,
      SINGLE_JOB_SECONDS,
      jwtIteration(allPaths),
    );
    const heap = await brokerHeap(broker);
    const mainBrokerRss = Math.max(
      ...rows.filter((r) => r.usage.broker).map((r) => r.usage.broker?.maxRss ?? 0),
    );
    await broker.stop();

    // 4: a second broker process, same configuration, but reaching OpenBao only through
    // a counting proxy. (The proxy stays out of the other scenarios: it would add a hop.)
    const proxy: CountingProxy = await startCountingProxy(new URL(bao.address));
    cleanup.push(() => proxy.close());
    const guarded = await startBrokerProcess({
      ...brokerOptions,
      name: 'broker-guarded',
      openbaoAddress: proxy.address,
    });
    cleanup.push(() => guarded.stop());
    const guardedPids = { broker: guarded.pid, openbao: baoPid, bench: process.pid };
    const valid = await fetch(fetchUrl(guarded), {
      method: 'POST',
      headers: brokerHeaders(1),
      body: ONE,
    });
    await valid.arrayBuffer();
    const throughProxy = proxy.counts().requests;
    if (valid.status !== 200 || throughProxy < 1) {
      throw new Error('the guarded broker does not reach OpenBao through the proxy');
    }
    const badSignature = Array.from({ length: CONNECTIONS }, () => badSignatureToken(issuer));
    const garbage = Array.from({ length: CONNECTIONS }, (_, i) => garbageToken(i));
    const floodHeaders = (pool: readonly string[]) => (i: number) => ({
      authorization: `Bearer ${pool[i % pool.length] ?? ''}`,
      'content-type': 'application/json',
    });
    // Warm-up of the new process with valid fetches, which also shows how the broker's
    // OpenBao client uses connections (new TCP connections per request) at this concurrency.
    proxy.reset();
    const churn = await runAutocannon({
      url: fetchUrl(guarded),
      method: 'POST',
      body: ONE,
      headersFor: brokerHeaders,
      connections: CONNECTIONS,
      durationSeconds: 2,
      expectStatus: 200,
      maxRequests: MAX_REQUESTS,
    });
    const pool = { ...proxy.counts(), fetches: churn.statuses['200'] ?? 0, all: churn.completed };
    await runAutocannon({
      url: fetchUrl(guarded),
      method: 'POST',
      body: ONE,
      headersFor: floodHeaders(badSignature),
      connections: CONNECTIONS,
      durationSeconds: 1,
      expectStatus: 401,
      maxRequests: MAX_REQUESTS,
    });
    proxy.reset();
    const floods: Array<{ row: Row; openbaoRequests: number; openbaoBytes: number }> = [];
    for (const [id, label, pool] of [
      ['4a', 'flood: bad signature, known kid', badSignature],
      ['4b', 'flood: garbage tokens', garbage],
    ] as const) {
      const before = proxy.counts();
      await measure({ id, label, load: autocannonLoad, expected: '401' }, guardedPids, () =>
        runAutocannon({
          url: fetchUrl(guarded),
          method: 'POST',
          body: ONE,
          headersFor: floodHeaders(pool),
          connections: CONNECTIONS,
          durationSeconds: PHASE_SECONDS,
          expectStatus: 401,
          maxRequests: MAX_REQUESTS,
        }),
      );
      const after = proxy.counts();
      const row = rows.at(-1);
      if (row === undefined) throw new Error('no flood row');
      floods.push({
        row,
        openbaoRequests: after.requests - before.requests,
        openbaoBytes: after.bytesToUpstream - before.bytesToUpstream,
      });
    }
    // The path to OpenBao still works after the flood (and is still counted).
    const afterFlood = await fetch(fetchUrl(guarded), {
      method: 'POST',
      headers: brokerHeaders(2),
      body: ONE,
    });
    await afterFlood.arrayBuffer();
    const countedAfter = proxy.counts().requests;
    const guardedRss = Math.max(...floods.map((f) => f.row.usage.broker?.maxRss ?? 0));

    // The same flood against a bare node:http server: this machine's ceiling for Node HTTP.
    await guarded.stop();
    const bare = await startBareServer();
    cleanup.push(() => bare.stop());
    const calibration = await measure(
      {
        id: '4c',
        label: 'calibration: bare node:http 401 server (broker columns)',
        load: autocannonLoad,
        expected: '401',
      },
      { broker: bare.pid, openbao: baoPid, bench: process.pid },
      () =>
        runAutocannon({
          url: `${bare.url}/v1/fetch`,
          method: 'POST',
          body: ONE,
          headersFor: floodHeaders(garbage),
          connections: CONNECTIONS,
          durationSeconds: PHASE_SECONDS,
          expectStatus: 401,
          maxRequests: MAX_REQUESTS,
        }),
    );
    await bare.stop();

    report({
      rows,
      direct,
      brokerOne,
      brokerThree,
      directAtRate,
      brokerAtRate,
      directPaced,
      brokerPaced,
      loops,
      floods,
      calibration,
      pool,
      proxyCheck: { before: throughProxy, afterFloodStatus: afterFlood.status, countedAfter },
      mainBrokerRss,
      guardedRss,
      heap,
      compiledCli,
      openbaoVersion: bao.version,
      elapsedSeconds: (Date.now() - started) / 1000,
    });
    if (comparison !== undefined) process.stdout.write(`${comparison}\n`);
  } finally {
    clearTimeout(watchdog);
    await runCleanup();
  }
}

interface ReportInput {
  readonly rows: readonly Row[];
  readonly direct: LoadResult;
  readonly brokerOne: LoadResult;
  readonly brokerThree: LoadResult;
  readonly directAtRate: LoadResult;
  readonly brokerAtRate: LoadResult;
  readonly directPaced: LoadResult;
  readonly brokerPaced: LoadResult;
  readonly loops: Readonly<Record<string, LoadResult>>;
  readonly floods: ReadonlyArray<{ row: Row; openbaoRequests: number; openbaoBytes: number }>;
  readonly calibration: LoadResult;
  readonly pool: { connections: number; requests: number; fetches: number; all: number };
  readonly proxyCheck: { before: number; afterFloodStatus: number; countedAfter: number };
  readonly mainBrokerRss: number;
  readonly guardedRss: number;
  readonly heap: Readonly<Record<string, number>>;
  readonly compiledCli: string | undefined;
  readonly openbaoVersion: string;
  readonly elapsedSeconds: number;
}

function okCount(row: Row): string {
  const expected = row.result.tool === 'loop' && row.expected === '200' ? '2xx' : row.expected;
  const ok = row.result.statuses[expected] ?? 0;
  const total = Object.values(row.result.statuses).reduce((a, b) => a + b, 0) + row.result.errors;
  return `${thousands(ok)}/${thousands(total)}`;
}

function report(input: ReportInput): void {
  const out: string[] = [];
  out.push(
    '## zsb broker benchmark',
    '',
    `machine: ${os.availableParallelism()} cores, ${cpuModel()}; Node ${process.version}; ` +
      `OpenBao ${input.openbaoVersion}; autocannon ${packageVersion('autocannon')}; ` +
      `broker ${input.compiledCli ?? 'src/ through tsx'}, log level ${BROKER_LOG_LEVEL}; run took ${fixed(input.elapsedSeconds, 0)} s`,
    '',
    "p50/p99: autocannon's numbers (whole ms) for autocannon rows, the loop's own for loop rows; " +
      '"exact" from every response time. CPU: share of one core during the phase. ' +
      'RSS: largest sample (every 200 ms). Loop rows count whole jobs (login + reads) per second. ' +
      '"other CPU": processes outside this benchmark (a shared machine). ' +
      'CPU ms/req: CPU time per answered request (per job in loop rows).',
    '',
  );
  const header = [
    '#',
    'scenario',
    'load',
    'req/s',
    'p50 ms',
    'p99 ms',
    'exact p50 / p99 ms',
    'expected status',
    'broker RSS MB',
    'broker CPU',
    'OpenBao RSS MB',
    'OpenBao CPU',
    'CPU ms/req broker / OpenBao',
    'load gen CPU',
    'other CPU',
  ];
  /** CPU time per answered request (per job for loop rows): robust to a busy machine. */
  const perRequest = (cores: number | undefined, row: Row) =>
    row.result.okRps > 0 ? fixed(((cores ?? 0) * 1000) / row.result.okRps, 2) : 'n/a';
  const rows = input.rows.map((row) => {
    const r = row.result;
    const whole = r.tool === 'autocannon';
    return [
      row.id,
      row.label,
      row.load,
      thousands(r.rps),
      whole ? fixed(r.p50, 0) : fixed(r.p50, 2),
      whole ? fixed(r.p99, 0) : fixed(r.p99, 2),
      `${fixed(r.preciseP50, 2)} / ${fixed(r.preciseP99, 2)}`,
      `${row.expected}: ${okCount(row)}`,
      megabytes(row.usage.broker?.maxRss ?? 0),
      percent(row.usage.broker?.cpuCores ?? 0),
      megabytes(row.usage.openbao?.maxRss ?? 0),
      percent(row.usage.openbao?.cpuCores ?? 0),
      `${perRequest(row.usage.broker?.cpuCores, row)} / ${perRequest(row.usage.openbao?.cpuCores, row)}`,
      percent(row.usage.bench?.cpuCores ?? 0),
      percent(row.usage.other?.cpuCores ?? 0),
    ];
  });
  out.push(markdownTable(header, rows), '');

  const targets: Target[] = [];
  const throughput = input.brokerOne.okRps / input.direct.okRps;
  targets.push({
    what: `throughput, broker fetch (1 secret) / direct read, autocannon c=${CONNECTIONS}`,
    value: `${fixed(throughput, 2)}× (${thousands(input.brokerOne.okRps)} / ${thousands(input.direct.okRps)} req/s with 200)`,
    target: '≥ 0.80×',
    met: throughput >= 0.8,
  });
  const secretsPerSecond = (input.brokerThree.okRps * 3) / input.direct.okRps;
  targets.push({
    what: 'secrets/s, broker fetch (3 secrets) / direct read (info)',
    value: `${fixed(secretsPerSecond, 2)}× (${thousands(input.brokerThree.okRps * 3)} / ${thousands(input.direct.okRps)})`,
    target: '—',
    met: true,
  });
  const added = input.brokerAtRate.preciseP99 - input.directAtRate.preciseP99;
  const addedPaced = input.brokerPaced.p99 - input.directPaced.p99;
  targets.push({
    what: `added p99 at ${RATE} req/s, autocannon overallRate (broker − direct, exact)`,
    value: `${fixed(added, 2)} ms (${fixed(input.brokerAtRate.preciseP99, 2)} − ${fixed(input.directAtRate.preciseP99, 2)}); autocannon: ${fixed(input.brokerAtRate.p99 - input.directAtRate.p99, 0)} ms`,
    target: '≤ 2 ms',
    met: added <= 2,
  });
  targets.push({
    what: `added p99 at a steady ${RATE} req/s, paced open loop (broker − direct)`,
    value: `${fixed(addedPaced, 2)} ms (${fixed(input.brokerPaced.p99, 2)} − ${fixed(input.directPaced.p99, 2)}); p50 +${fixed(input.brokerPaced.p50 - input.directPaced.p50, 2)} ms`,
    target: '≤ 2 ms',
    met: addedPaced <= 2,
  });
  const pairs: Array<[string, string, string]> = [
    ['3a1', '2a1', '1 secret, one job at a time (c=1)'],
    ['3aL', '2aL', `1 secret, c=${CONNECTIONS}`],
    ['3b1', '2b1', '3 secrets, one job at a time (c=1)'],
    ['3bL', '2bL', `3 secrets, c=${CONNECTIONS}`],
  ];
  for (const [brokerId, jwtId, what] of pairs) {
    const b = input.loops[brokerId];
    const j = input.loops[jwtId];
    if (b === undefined || j === undefined) continue;
    targets.push({
      what: `job fetch latency, broker / JWT login + read, ${what}`,
      value: `p50 ${fixed(b.p50 / j.p50, 2)}× (${fixed(b.p50, 2)} vs ${fixed(j.p50, 2)} ms), p99 ${fixed(b.p99 / j.p99, 2)}× (${fixed(b.p99, 2)} vs ${fixed(j.p99, 2)} ms)`,
      target: '< 1× (broker faster)',
      met: b.p50 < j.p50 && b.p99 < j.p99,
    });
  }
  for (const flood of input.floods) {
    const r = flood.row.result;
    const rejected = r.statuses['401'] ?? 0;
    const allRejected = rejected === r.completed && r.errors === 0;
    targets.push({
      what: `invalid tokens rejected/s, ${flood.row.label.replace('flood: ', '')}`,
      value: `${thousands(r.okRps)}/s (${allRejected ? 'all' : 'NOT all'} 401)`,
      target: '≥ 10,000/s',
      met: r.okRps >= 10000 && allRejected,
    });
    targets.push({
      what: `OpenBao requests during flood (${flood.row.id})`,
      value: `${flood.openbaoRequests} (${flood.openbaoBytes} bytes)`,
      target: '0',
      met: flood.openbaoRequests === 0 && flood.openbaoBytes === 0,
    });
  }
  targets.push({
    what: "reference: bare node:http 401 server, same flood (this machine's ceiling)",
    value: `${thousands(input.calibration.okRps)}/s`,
    target: '—',
    met: true,
  });
  targets.push({
    what: 'broker RSS, largest sample under load (main / flood process)',
    value: `${megabytes(input.mainBrokerRss)} MB / ${megabytes(input.guardedRss)} MB`,
    target: '≤ 100 MB',
    met: Math.max(input.mainBrokerRss, input.guardedRss) <= 100e6,
  });
  out.push(
    markdownTable(
      ['target', 'measured', 'target', 'met'],
      targets.map((t) => [
        t.what,
        t.value,
        t.target,
        t.target === '—' ? '' : t.met ? 'met' : 'MISSED',
      ]),
    ),
    '',
    `broker heap after the main phases (its /metrics): ${Object.entries(input.heap)
      .map(([k, v]) => `${k} ${megabytes(v)} MB`)
      .join(', ')}.`,
    '',
    `broker → OpenBao connections: ${thousands(input.pool.fetches)} fetches answered 200 ` +
      `(of ${thousands(input.pool.all)}) at c=${CONNECTIONS} ` +
      `(2 s, through the proxy) made ${thousands(input.pool.requests)} OpenBao requests over ` +
      `${thousands(input.pool.connections)} new TCP connections.`,
    '',
    `proxy check: a valid fetch through the guarded broker made ${input.proxyCheck.before} ` +
      `OpenBao request(s) through the proxy before the flood; after it, a valid fetch answered ` +
      `${input.proxyCheck.afterFloodStatus} and the proxy had counted ${input.proxyCheck.countedAfter} since the reset.`,
    '',
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
