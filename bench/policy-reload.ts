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
 *
 * With BENCH_BASELINE_SRC (an older checkout's src/), each phase also reloads through the
 * old store, on its own copy of the directory, interleaved with the current one.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createPolicyStore } from '../src/broker/policy-store.js';
import { forgetParsedFiles } from '../src/policy/source.js';
import { policyFiles } from './support/policy-files.js';

const PHASES = Number(process.argv[2] ?? 3);
const PHASE_MS = 4000;
const TICK_MS = 5;

/** Lateness (ms) of every tick of a paced loop running for `ms`, with `during` started at 1 s. */
async function pacedPhase(ms: number, during?: () => Promise<unknown>): Promise<number[]> {
  const late: number[] = [];
  const start = performance.now();
  let n = 0;
  let work: Promise<unknown> | undefined;
  await new Promise<void>((done) => {
    const tick = (): void => {
      const now = performance.now();
      // Every tick that came due while the loop was busy is late by its own amount.
      while (start + n * TICK_MS <= now) {
        late.push(now - (start + n * TICK_MS));
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
  return late;
}

function p(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0;
}

const dir = await mkdtemp(join(tmpdir(), 'zsb-bench-reload-'));
const files = policyFiles(10000);
for (const f of files) await writeFile(join(dir, f.name), f.text);
const store = createPolicyStore(dir, { maxTtlSeconds: 3600 });
const first = await store.reload();
if (!first.ok) throw new Error(first.problems.slice(0, 3).join('\n'));

const baselineSrc = process.env.BENCH_BASELINE_SRC;
const baselineDir = await mkdtemp(join(tmpdir(), 'zsb-bench-reload-old-'));
const baselineStore =
  baselineSrc === undefined
    ? undefined
    : (
        (await import(pathToFileURL(resolve(baselineSrc, 'broker/policy-store.ts')).href)) as {
          createPolicyStore: typeof createPolicyStore;
        }
      ).createPolicyStore(baselineDir, { maxTtlSeconds: 3600 });
if (baselineStore !== undefined) {
  for (const f of files) await writeFile(join(baselineDir, f.name), f.text);
  const loaded = await baselineStore.reload();
  if (!loaded.ok) throw new Error(loaded.problems.slice(0, 3).join('\n'));
}

const rows: string[] = [];
let version = 0;
for (let phase = 0; phase < PHASES; phase++) {
  const quiet = await pacedPhase(PHASE_MS);
  // One file changed (a grant's ttl), as an edit merged to the policy repository.
  const changed = files[5 + (phase % 10)];
  if (changed === undefined) throw new Error('bench policy set too small');
  version++;
  let reloadMs = 0;
  const oneFile = await pacedPhase(PHASE_MS, async () => {
    await writeFile(
      join(dir, changed.name),
      changed.text.replace('ttl: 15m', `ttl: ${10 + (version % 5)}m`),
    );
    const t = performance.now();
    const r = await store.reload();
    reloadMs = performance.now() - t;
    if (!r.ok) throw new Error(r.problems.slice(0, 3).join('\n'));
  });
  // Every file parsed again (a restart's first load, or a fresh checkout of every file).
  let fullMs = 0;
  const allFiles = await pacedPhase(PHASE_MS, async () => {
    forgetParsedFiles();
    const t = performance.now();
    await store.reload();
    fullMs = performance.now() - t;
  });
  let baselineMs = 0;
  const baselineRow =
    baselineStore === undefined
      ? ''
      : await pacedPhase(PHASE_MS, async () => {
          await writeFile(
            join(baselineDir, changed.name),
            changed.text.replace('ttl: 15m', `ttl: ${10 + (version % 5)}m`),
          );
          const t = performance.now();
          await baselineStore.reload();
          baselineMs = performance.now() - t;
        }).then(
          (late) =>
            `; baseline: reload of 1 changed file (${baselineMs.toFixed(0)} ms) ${p(late, 0.99).toFixed(2)} / ${p(late, 1).toFixed(1)}`,
        );
  rows.push(
    `phase ${phase + 1}: tick lateness p99 / max ms: no reload ${p(quiet, 0.99).toFixed(2)} / ${p(quiet, 1).toFixed(1)}; ` +
      `reload of 1 changed file (${reloadMs.toFixed(0)} ms) ${p(oneFile, 0.99).toFixed(2)} / ${p(oneFile, 1).toFixed(1)}; ` +
      `reload parsing every file (${fullMs.toFixed(0)} ms) ${p(allFiles, 0.99).toFixed(2)} / ${p(allFiles, 1).toFixed(1)}${baselineRow}`,
  );
  console.log(rows[rows.length - 1]);
}
await rm(dir, { recursive: true, force: true });
await rm(baselineDir, { recursive: true, force: true });
