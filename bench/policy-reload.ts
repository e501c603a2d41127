/**
 * Benchmark: what a reload of the 10,000-grant policy set does to requests served
 * meanwhile (issue: a job's fetch p99 up by at most 2 ms). The broker serves on one event
 * loop, so a request arriving during a reload waits for whatever part of the reload runs
 * synchronously. A paced open loop (a tick every 5 ms, 200/s, as bench/broker.ts's 5c/5d)
 * measures how late each tick runs; phases with and without a reload of the real policy
 * store (`createPolicyStore`, files on disk) are interleaved, and the p99 lateness of the
 * two is compared. The lateness is what a fetch's latency gets added on top of its own.
 *
 *   npx tsx bench/policy-reload.ts [phases]
 *   BENCH_BASELINE_SRC=/tmp/old/src npx tsx bench/policy-reload.ts
 *   BENCH_STORE=dist npx tsx bench/policy-reload.ts   (the compiled store: npm run build first)
 *
 * Two reloads are measured: one changed file of 21 (an edit merged to the policy
 * repository) and every file changed (a big merge; each file's text differs, so every
 * file is parsed and checked again). With BENCH_BASELINE_SRC (an older checkout's src/),
 * each phase also reloads through the old store, on its own copy of the directory, in
 * the same way, interleaved with the current one.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { createPolicyStore } from '../src/broker/policy-store.js';
import { policyFiles } from './support/policy-files.js';

type StoreModule = { createPolicyStore: typeof createPolicyStore };
const current = (
  process.env.BENCH_STORE === 'dist'
    ? await import(pathToFileURL(resolve('dist/broker/policy-store.js')).href)
    : await import('../src/broker/policy-store.js')
) as StoreModule;

const PHASES = Number(process.argv[2] ?? 3);
const PHASE_MS = 4000;
const TICK_MS = 5;

/**
 * Lateness (ms) of every tick of a paced loop running for `ms`, with `during` started at
 * 1 s; and the part of each lateness the serving thread's own work explains: its CPU
 * time (its garbage collection included) since the previous tick ran, capped at the
 * lateness. The rest is time the thread waited for a CPU the neighbours had (on Linux;
 * elsewhere `own` is empty).
 */
async function pacedPhase(
  ms: number,
  during?: () => Promise<unknown>,
): Promise<{ late: number[]; own: number[] }> {
  const late: number[] = [];
  const own: number[] = [];
  const start = performance.now();
  let n = 0;
  let work: Promise<unknown> | undefined;
  let cpuBefore = threadTimes()?.cpu;
  await new Promise<void>((done) => {
    const tick = (): void => {
      const now = performance.now();
      const cpu = threadTimes()?.cpu;
      const busy =
        cpu === undefined || cpuBefore === undefined ? undefined : (cpu - cpuBefore) / 1e6;
      cpuBefore = cpu;
      // Every tick that came due while the loop was busy is late by its own amount.
      while (start + n * TICK_MS <= now) {
        const lateness = now - (start + n * TICK_MS);
        late.push(lateness);
        if (busy !== undefined) own.push(Math.min(lateness, busy));
        n++;
      }
      if (work === undefined && during !== undefined && now - start >= 1000) work = during();
      if (now - start >= ms) {
        done();
        return;
      }
      setTimeout(tick, Math.max(0, start + n * TICK_MS - performance.now()));
    };
    tick();
  });
  await work;
  return { late, own };
}

/**
 * This thread's time on a CPU and waiting for one (ns), from Linux's schedstat: what a
 * reload costs the serving thread, which a busy shared machine does not change much,
 * and how long the thread stood in the run queue (the neighbours' share of the lateness).
 */
function threadTimes(): { cpu: number; queued: number } | undefined {
  try {
    const [cpu, queued] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ');
    return { cpu: Number(cpu), queued: Number(queued) };
  } catch {
    return undefined;
  }
}

function p(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0;
}

const dir = await mkdtemp(join(tmpdir(), 'zsb-bench-reload-'));
const files = policyFiles(10000);
for (const f of files) await writeFile(join(dir, f.name), f.text);
const store = current.createPolicyStore(dir, { maxTtlSeconds: 3600 });
const first = await store.reload();
if (!first.ok) throw new Error(first.problems.slice(0, 3).join('\n'));

const baselineSrc = process.env.BENCH_BASELINE_SRC;
const baselineDir = await mkdtemp(join(tmpdir(), 'zsb-bench-reload-old-'));
const baselineStore =
  baselineSrc === undefined
    ? undefined
    : (
        (await import(
          pathToFileURL(resolve(baselineSrc, 'broker/policy-store.ts')).href
        )) as StoreModule
      ).createPolicyStore(baselineDir, { maxTtlSeconds: 3600 });
if (baselineStore !== undefined) {
  for (const f of files) await writeFile(join(baselineDir, f.name), f.text);
  const loaded = await baselineStore.reload();
  if (!loaded.ok) throw new Error(loaded.problems.slice(0, 3).join('\n'));
}

type Store = ReturnType<typeof createPolicyStore>;

/** A new ttl in every grant of the file: its text differs from any version before. */
function edited(text: string, version: number): string {
  return text.replaceAll('ttl: 15m', `ttl: ${10 + (version % 5)}m`);
}

/** One reload of `store` after writing `changed` into `into`, during a paced phase. */
async function reloadPhase(
  store: Store,
  into: string,
  changed: readonly { name: string; text: string }[],
  version: number,
): Promise<Reload> {
  let ms = 0;
  let cpuMs = Number.NaN;
  const { late, own } = await pacedPhase(PHASE_MS, async () => {
    for (const f of changed) await writeFile(join(into, f.name), edited(f.text, version));
    const t = performance.now();
    const before = threadTimes();
    const r = await store.reload();
    const after = threadTimes();
    ms = performance.now() - t;
    if (before && after) cpuMs = (after.cpu - before.cpu) / 1e6;
    if (!r.ok) throw new Error(r.problems.slice(0, 3).join('\n'));
  });
  return { late, own, ms, cpuMs };
}

interface Reload {
  readonly late: number[];
  readonly own: number[];
  /** Wall time of the reload, and the serving thread's CPU time during it. */
  readonly ms: number;
  readonly cpuMs: number;
}

/** "p99 / max" of the lateness, and of the part the serving thread's own work explains. */
function lateness(r: { late: number[]; own: number[] }): string {
  return `${p(r.late, 0.99).toFixed(2)} / ${p(r.late, 1).toFixed(1)} [own ${p(r.own, 0.99).toFixed(2)} / ${p(r.own, 1).toFixed(1)}]`;
}

function cell(r: Reload): string {
  return `${lateness(r)} (reload ${r.ms.toFixed(0)} ms, serving thread CPU ${r.cpuMs.toFixed(0)} ms)`;
}

console.log(
  `store: ${process.env.BENCH_STORE === 'dist' ? 'dist/ (compiled)' : 'src/ (tsx)'}; ` +
    "tick lateness p99 / max ms [own: the part explained by the serving thread's own CPU time], 200/s paced loop, 4 s phases",
);
let version = 0;
for (let phase = 0; phase < PHASES; phase++) {
  const queuedBefore = threadTimes();
  const quiet = await pacedPhase(PHASE_MS);
  const queuedAfter = threadTimes();
  const queuedMs =
    queuedBefore && queuedAfter ? (queuedAfter.queued - queuedBefore.queued) / 1e6 : Number.NaN;
  const changed = files[5 + (phase % 10)];
  if (changed === undefined) throw new Error('bench policy set too small');
  version++;
  const one = await reloadPhase(store, dir, [changed], version);
  const oneOld =
    baselineStore && (await reloadPhase(baselineStore, baselineDir, [changed], version));
  version++;
  const all = await reloadPhase(store, dir, files, version);
  const allOld = baselineStore && (await reloadPhase(baselineStore, baselineDir, files, version));
  console.log(
    `phase ${phase + 1}: no reload ${lateness(quiet)} ` +
      `(in the run queue ${queuedMs.toFixed(0)} ms of ${PHASE_MS}); ` +
      `1 of 21 files changed: ${cell(one)}${oneOld ? `, baseline ${cell(oneOld)}` : ''}; ` +
      `all 21 changed: ${cell(all)}${allOld ? `, baseline ${cell(allOld)}` : ''}`,
  );
}
await rm(dir, { recursive: true, force: true });
await rm(baselineDir, { recursive: true, force: true });
