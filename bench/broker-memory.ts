/**
 * Benchmark: the broker's memory under a saturating fetch load with Node's defaults (no
 * node flags), the current build against a baseline build, interleaved in one run (issue
 * #20: steady RSS ≤ 100 MB without the image's `--optimize-for-size`).
 *
 * One run starts `bao server -dev` (.venv-bao) and a Zuul-like issuer (RSA 4096), writes
 * the bench secrets and policy (bench/support), then for each round and each build (A/B/A/B
 * …) starts that build's `dist/cli/index.js serve` as its own process with Node's defaults,
 * waits until it is idle, samples its RSS (/proc/PID/status VmRSS) every 100 ms while
 * autocannon sends c=32 POST /v1/fetch of 1 secret, and stops it. Per run it reports: idle
 * RSS after start, steady RSS (median of the samples of the second half of the load), peak
 * RSS, V8 heap spaces from the broker's /metrics (read at three quarters of the load), and
 * broker CPU ms per answered request; then the medians per build and the ratio
 * current/baseline.
 *
 *   npm run build && npx tsx bench/broker-memory.ts
 *   BENCH_BASELINE_CLI=F   the baseline's compiled CLI (required), e.g. an older commit's:
 *                          git archive REV | tar -x -C DIR; cd DIR && npm ci && npm run build
 *   BENCH_CURRENT_CLI=F    the current compiled CLI (default dist/cli/index.js)
 *   BENCH_SECONDS=N        load per run (default 12)
 *   BENCH_ROUNDS=N         rounds, each runs both builds (default 3)
 *   BENCH_NODE_ARGS="…"    node flags for both brokers (default none: Node's defaults)
 *   BENCH_CURRENT_NODE_ARGS="…"  node flags for the current build only
 *   BENCH_LARGE_POLICIES=0 skip the last phase: each build starts with 10,000 grants
 *                          (bench/support/policy-files.ts) and reloads them once (SIGHUP);
 *                          its peak RSS (VmHWM) and that it still serves are reported
 *   BENCH_VARIANTS="name=words;…"  more runs of the current build: each word a node flag,
 *                          or NAME=value for the broker's environment, e.g.
 *                          "semi4=--max-semi-space-size=4;arena2=MALLOC_ARENA_MAX=2"
 */
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type DevOpenBao, startDevOpenBao } from '../src/dev/openbao-dev-server.js';
import { DEFAULT_ZUUL_TOKEN, ZuulIssuer } from '../src/dev/zuul-issuer.js';
import { prepareBenchBrokers, startBrokerProcess } from './support/broker-process.js';
import { runAutocannon } from './support/load.js';
import { BENCH_SECRET_NAMES } from './support/openbao-setup.js';
import { policyFiles } from './support/policy-files.js';
import { cpuMs, rssBytes } from './support/procstat.js';
import { fixed, markdownTable, megabytes, thousands } from './support/table.js';

const SECONDS = positiveNumber(process.env.BENCH_SECONDS, 12);
const ROUNDS = positiveNumber(process.env.BENCH_ROUNDS, 3);
const CONNECTIONS = 32;
const SAMPLE_MS = 100;
const IDLE_SETTLE_MS = 3000;
const TOKEN_POOL = 64;
const MAX_REQUESTS = 2_000_000;
const WATCHDOG_MS = 20 * 60 * 1000;
const AUDIENCE = DEFAULT_ZUUL_TOKEN.audience;
const ONE = JSON.stringify({ secrets: [BENCH_SECRET_NAMES[0]] });
const words = (value: string | undefined) => (value ?? '').split(/\s+/).filter(Boolean);
const NODE_ARGS = words(process.env.BENCH_NODE_ARGS);
const CURRENT_CLI = process.env.BENCH_CURRENT_CLI ?? 'dist/cli/index.js';
interface Build {
  readonly name: string;
  readonly cli: string;
  readonly nodeArgs: readonly string[];
  /** Environment variables for the broker process (e.g. MALLOC_ARENA_MAX). */
  readonly env: Readonly<Record<string, string>>;
}

/** Words of a variant: `NAME=value` sets an environment variable, others are node flags. */
function variantOf(name: string, spec: string): Build {
  const env: Record<string, string> = {};
  const nodeArgs = [...NODE_ARGS];
  for (const word of words(spec)) {
    const assignment = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(word);
    if (assignment?.[1] !== undefined && assignment[2] !== undefined)
      env[assignment[1]] = assignment[2];
    else nodeArgs.push(word);
  }
  return { name, cli: CURRENT_CLI, nodeArgs, env };
}
/** The baseline is measured in the same run, so there is no run without one. */
function baselineCli(): string {
  const cli = process.env.BENCH_BASELINE_CLI;
  if (cli === undefined || cli === '') {
    throw new Error(
      'BENCH_BASELINE_CLI must name a baseline build: git archive REV | tar -x -C DIR, then npm ci and npm run build in DIR; BENCH_BASELINE_CLI=DIR/dist/cli/index.js',
    );
  }
  return cli;
}
const BUILDS: readonly Build[] = [
  {
    name: 'baseline',
    cli: baselineCli(),
    nodeArgs: NODE_ARGS,
    env: {},
  },
  variantOf('current', process.env.BENCH_CURRENT_NODE_ARGS ?? ''),
  ...(process.env.BENCH_VARIANTS ?? '')
    .split(';')
    .filter((v) => v.includes('='))
    .map((v) => {
      const at = v.indexOf('=');
      return variantOf(v.slice(0, at).trim(), v.slice(at + 1));
    }),
];
/** The V8 heap spaces reported, as prom-client names them. */
const SPACES = ['new', 'old', 'code', 'large_object'] as const;

function describe(build: Build): string {
  const env = Object.entries(build.env).map(([key, value]) => `${key}=${value}`);
  const line = [...env, 'node', ...build.nodeArgs, build.cli].join(' ');
  return build.nodeArgs.length ? line : `${line} (Node's defaults)`;
}

function positiveNumber(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && Number.isFinite(n) && n > 0 ? n : fallback;
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** The largest RSS the process ever had (`VmHWM`), bytes. */
function peakRssBytes(pid: number): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? Number.NaN : Number(match[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface HeapSpaces {
  /** Per space: size (what V8 holds) and used, bytes. */
  readonly size: Readonly<Record<string, number>>;
  readonly used: Readonly<Record<string, number>>;
  readonly heapTotal: number;
  readonly external: number;
}

/** The heap gauges of prom-client's default metrics (prefix zsb_) from /metrics. */
async function heapSpaces(url: string): Promise<HeapSpaces> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const size: Record<string, number> = {};
  const used: Record<string, number> = {};
  let heapTotal = Number.NaN;
  let external = Number.NaN;
  for (const line of text.split('\n')) {
    const space = /^zsb_nodejs_heap_space_size_(total|used)_bytes\{space="(\w+)"\} (\S+)$/.exec(
      line,
    );
    if (space?.[1] && space[2] && space[3]) {
      (space[1] === 'total' ? size : used)[space[2]] = Number(space[3]);
    }
    const total = /^zsb_nodejs_heap_size_total_bytes (\S+)$/.exec(line);
    if (total?.[1]) heapTotal = Number(total[1]);
    const ext = /^zsb_nodejs_external_memory_bytes (\S+)$/.exec(line);
    if (ext?.[1]) external = Number(ext[1]);
  }
  return { size, used, heapTotal, external };
}

interface Run {
  readonly build: string;
  readonly round: number;
  readonly idleRss: number;
  readonly steadyRss: number;
  readonly peakRss: number;
  readonly endRss: number;
  /** VmHWM once ready: the start-up's peak. */
  readonly startPeakRss: number;
  readonly cpuMsPerRequest: number;
  readonly okRps: number;
  readonly non200: number;
  readonly idleHeap: HeapSpaces;
  readonly loadHeap: HeapSpaces;
}

async function main(): Promise<void> {
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'zsb-bench-memory-'));
  const cleanup: (() => Promise<void> | void)[] = [() => rm(workDir, { recursive: true })];
  const watchdog = setTimeout(() => {
    log('watchdog: the run took too long, giving up');
    process.exit(3);
  }, WATCHDOG_MS);
  watchdog.unref();
  try {
    log('starting OpenBao dev server and a Zuul-like issuer (RSA 4096)');
    const bao: DevOpenBao = await startDevOpenBao();
    cleanup.push(() => bao.stop());
    const issuer = await ZuulIssuer.start({ modulusLength: 4096 });
    cleanup.push(() => issuer.close());
    const { shared } = await prepareBenchBrokers(workDir, bao, issuer, AUDIENCE);
    const tokens = Array.from({ length: TOKEN_POOL }, () => issuer.mint({ aud: AUDIENCE }));
    const headersFor = (i: number) => ({
      authorization: `Bearer ${tokens[i % TOKEN_POOL] ?? ''}`,
      'content-type': 'application/json',
    });

    const runs: Run[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate which build goes first, so neither always runs right after OpenBao warmed up.
      const order = round % 2 === 1 ? BUILDS : [...BUILDS].reverse();
      for (const build of order) {
        log(`round ${round}: ${build.name} (${describe(build)})`);
        const broker = await startBuild(build, {
          ...shared,
          name: `${build.name}-${round}`,
          openbaoAddress: bao.address,
          logLevel: 'warn',
        });
        try {
          // One fetch answers 200 before anything is measured: the build really serves.
          const first = await fetch(`${broker.url}/v1/fetch`, {
            method: 'POST',
            headers: headersFor(0),
            body: ONE,
          });
          await first.arrayBuffer();
          if (first.status !== 200) throw new Error(`${build.name}: first fetch ${first.status}`);
          const startPeakRss = peakRssBytes(broker.pid);
          await sleep(IDLE_SETTLE_MS);
          const idleSamples: number[] = [];
          for (let i = 0; i < 10; i++) {
            idleSamples.push(rssBytes(broker.pid) ?? Number.NaN);
            await sleep(SAMPLE_MS);
          }
          const idleHeap = await heapSpaces(broker.url);

          const samples: number[] = [];
          const sampler = setInterval(() => {
            const rss = rssBytes(broker.pid);
            if (rss !== undefined) samples.push(rss);
          }, SAMPLE_MS);
          let loadHeap: HeapSpaces | undefined;
          const heapTimer = setTimeout(() => {
            void heapSpaces(broker.url).then((h) => {
              loadHeap = h;
            });
          }, SECONDS * 750);
          const cpu0 = cpuMs(broker.pid) ?? Number.NaN;
          const result = await runAutocannon({
            url: `${broker.url}/v1/fetch`,
            method: 'POST',
            body: ONE,
            headersFor,
            connections: CONNECTIONS,
            durationSeconds: SECONDS,
            maxRequests: MAX_REQUESTS,
            expectStatus: 200,
          });
          const cpu1 = cpuMs(broker.pid) ?? Number.NaN;
          clearInterval(sampler);
          clearTimeout(heapTimer);
          const endRss = rssBytes(broker.pid) ?? Number.NaN;
          const ok = result.statuses['200'] ?? 0;
          const run: Run = {
            build: build.name,
            round,
            idleRss: median(idleSamples),
            steadyRss: median(samples.slice(Math.floor(samples.length / 2))),
            peakRss: Math.max(...samples),
            endRss,
            startPeakRss,
            cpuMsPerRequest: (cpu1 - cpu0) / Math.max(1, ok),
            okRps: result.okRps,
            non200: result.completed - ok + result.errors,
            idleHeap,
            loadHeap: loadHeap ?? (await heapSpaces(broker.url)),
          };
          runs.push(run);
          log(
            `  idle ${megabytes(run.idleRss)} MB, steady ${megabytes(run.steadyRss)} MB, ` +
              `peak ${megabytes(run.peakRss)} MB, ${fixed(run.cpuMsPerRequest, 3)} ms CPU/req, ` +
              `${thousands(run.okRps)} req/s`,
          );
        } finally {
          await broker.stop();
        }
      }
    }
    const large =
      process.env.BENCH_LARGE_POLICIES === '0'
        ? []
        : await largePolicyLoads(workDir, shared, bao.address, headersFor);
    report(runs, large);
  } finally {
    clearTimeout(watchdog);
    for (const step of cleanup.reverse()) {
      await Promise.resolve(step()).catch((error: unknown) => log(`cleanup: ${String(error)}`));
    }
  }
}

interface LargeLoad {
  readonly build: string;
  readonly startPeakRss: number;
  readonly idleRss: number;
  readonly reloadPeakRss: number;
  readonly reloadsApplied: number;
  readonly servesAfter: boolean;
}

/**
 * Each build starts with the benchmarks' 10,000 grants beside the bench policy, answers a
 * fetch, reloads the set once (SIGHUP) and answers again: the policy parse is the largest
 * heap a broker needs, which a hard heap cap once made fatal (BENCHMARKS.md, "Memory").
 */
/** Starts a build's broker, with its environment variables (read by the child at spawn). */
async function startBuild(
  build: Build,
  options: Omit<Parameters<typeof startBrokerProcess>[0], 'nodeArgs' | 'compiledCli'>,
) {
  const saved = Object.keys(build.env).map((key) => [key, process.env[key]] as const);
  Object.assign(process.env, build.env);
  try {
    return await startBrokerProcess({
      ...options,
      nodeArgs: build.nodeArgs,
      compiledCli: build.cli,
    });
  } finally {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

async function largePolicyLoads(
  workDir: string,
  shared: Awaited<ReturnType<typeof prepareBenchBrokers>>['shared'],
  openbaoAddress: string,
  headersFor: (i: number) => Record<string, string>,
): Promise<LargeLoad[]> {
  const dir = path.join(workDir, 'policies-large');
  await mkdir(dir, { recursive: true });
  await copyFile(path.join(shared.policiesDir, 'bench.yaml'), path.join(dir, 'bench.yaml'));
  for (const file of policyFiles(10_000)) await writeFile(path.join(dir, file.name), file.text);
  const loads: LargeLoad[] = [];
  for (const build of BUILDS) {
    log(`10,000 grants: ${build.name}`);
    const broker = await startBuild(build, {
      ...shared,
      policiesDir: dir,
      name: `${build.name}-large`,
      openbaoAddress,
      logLevel: 'warn',
    });
    try {
      const serves = async () => {
        const answer = await fetch(`${broker.url}/v1/fetch`, {
          method: 'POST',
          headers: headersFor(1),
          body: ONE,
        });
        await answer.arrayBuffer();
        return answer.status === 200;
      };
      const servesBefore = await serves();
      const startPeakRss = peakRssBytes(broker.pid);
      await sleep(IDLE_SETTLE_MS);
      const idleRss = rssBytes(broker.pid) ?? Number.NaN;
      let reloadPeakRss = idleRss;
      process.kill(broker.pid, 'SIGHUP');
      for (let i = 0; i < 60; i++) {
        await sleep(50);
        reloadPeakRss = Math.max(reloadPeakRss, rssBytes(broker.pid) ?? Number.NaN);
      }
      const metrics = await (await fetch(`${broker.url}/metrics`)).text();
      const applied = /^zsb_policy_reloads_total\{outcome="applied"\} (\d+)$/m.exec(metrics);
      loads.push({
        build: build.name,
        startPeakRss,
        idleRss,
        reloadPeakRss,
        reloadsApplied: Number(applied?.[1] ?? 0),
        servesAfter: servesBefore && (await serves()),
      });
    } finally {
      await broker.stop();
    }
  }
  return loads;
}

function spaceCell(h: HeapSpaces, which: 'size' | 'used'): string {
  return SPACES.map((s) => megabytes(h[which][s] ?? Number.NaN)).join(' / ');
}

function report(runs: readonly Run[], large: readonly LargeLoad[]): void {
  const out: string[] = [];
  out.push(
    `Node ${process.version}; ${os.cpus().length} cores; load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')} (at the end); ${SECONDS} s of autocannon c=${CONNECTIONS} POST /v1/fetch ` +
      `(1 secret) per run; ${BUILDS.map((b) => `${b.name}: ${describe(b)}`).join('; ')}.`,
  );
  out.push('');
  out.push(
    markdownTable(
      [
        'round',
        'build',
        'idle RSS MB',
        'steady RSS MB',
        'peak RSS MB',
        'RSS after MB',
        'start-up peak MB',
        'CPU ms/req',
        'req/s (200)',
        'not 200',
        `heap size MB idle (${SPACES.join(' / ')})`,
        'heap size MB under load',
        'heap used MB under load',
      ],
      runs.map((r) => [
        String(r.round),
        r.build,
        megabytes(r.idleRss),
        megabytes(r.steadyRss),
        megabytes(r.peakRss),
        megabytes(r.endRss),
        megabytes(r.startPeakRss),
        fixed(r.cpuMsPerRequest, 3),
        thousands(r.okRps),
        String(r.non200),
        spaceCell(r.idleHeap, 'size'),
        spaceCell(r.loadHeap, 'size'),
        spaceCell(r.loadHeap, 'used'),
      ]),
    ),
  );
  out.push('');
  const of = (build: string, pick: (r: Run) => number) =>
    runs.filter((r) => r.build === build).map(pick);
  const range = (values: readonly number[], digits: number, scale = 1) =>
    `${fixed(median(values) / scale, digits)} (${fixed(Math.min(...values) / scale, digits)}–${fixed(Math.max(...values) / scale, digits)})`;
  const measures: [string, (r: Run) => number, number, number][] = [
    ['idle RSS after start, MB', (r) => r.idleRss, 0, 1e6],
    ['steady RSS under load (median of 2nd half), MB', (r) => r.steadyRss, 0, 1e6],
    ['peak RSS under load, MB', (r) => r.peakRss, 0, 1e6],
    ['new space under load, MB', (r) => r.loadHeap.size.new ?? Number.NaN, 1, 1e6],
    ['old space under load, MB', (r) => r.loadHeap.size.old ?? Number.NaN, 1, 1e6],
    ['broker CPU per answered fetch, ms', (r) => r.cpuMsPerRequest, 3, 1],
    ['fetches answered 200 per second', (r) => r.okRps, 0, 1],
  ];
  const others = BUILDS.slice(1).map((b) => b.name);
  out.push(
    markdownTable(
      [
        'measure (median of rounds, range)',
        'baseline',
        ...others,
        ...others.map((name) => `${name} / baseline`),
      ],
      measures.map(([label, pick, digits, scale]) => {
        const base = of('baseline', pick);
        return [
          label,
          range(base, digits, scale),
          ...others.map((name) => range(of(name, pick), digits, scale)),
          ...others.map((name) => `${fixed(median(of(name, pick)) / median(base), 2)}×`),
        ];
      }),
    ),
  );
  if (large.length > 0) {
    out.push('');
    out.push(
      markdownTable(
        [
          'build, 10,000 grants',
          'start-up peak RSS MB',
          'idle RSS MB',
          'peak RSS during a reload MB',
          'reloads applied',
          'fetch 200 before and after',
        ],
        large.map((l) => [
          l.build,
          megabytes(l.startPeakRss),
          megabytes(l.idleRss),
          megabytes(l.reloadPeakRss),
          String(l.reloadsApplied),
          l.servesAfter ? 'yes' : 'NO',
        ]),
      ),
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
