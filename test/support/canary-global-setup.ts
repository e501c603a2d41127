/**
 * vitest globalSetup of the root project (so it runs once for every run, unit and
 * integration): creates the run directory for the canary capture (ZSB_TEST_LOG_DIR, unless
 * already set) and, after the run, scans every captured log line and audit event for every
 * registered canary. A hit fails the run: the exit code is 1 and the scan report
 * (.vitest-canary-scan.json, read by scripts/check-test-results.mjs) lists file, line and
 * source of each hit, never the canary. A clean run's directory is removed; a failing
 * run's is kept for inspection.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import {
  type CanaryHit,
  formatHits,
  LOG_DIR_ENV,
  readCanaries,
  scanCaptures,
} from './canary-scan.js';

/** Where the report goes: next to vitest's JSON report, where check-test-results.mjs looks. */
export const SCAN_REPORT = '.vitest-canary-scan.json';

export interface ScanResult {
  readonly hits: readonly CanaryHit[];
  readonly lines: number;
  readonly canaries: number;
  /** Value-free: counts, and file:line and source of each hit. */
  readonly message: string;
}

/** Scans the run directory and writes the report file. */
export async function runScan(dir: string, reportFile: string): Promise<ScanResult> {
  const canaries = readCanaries(dir);
  const { hits, lines } = scanCaptures(dir, canaries);
  await writeFile(
    reportFile,
    `${JSON.stringify({ dir, canaries: canaries.length, lines, hits }, null, 2)}\n`,
  );
  const message =
    hits.length > 0
      ? `canary scan: ${hits.length} of ${lines} captured log lines and audit events contain ` +
        `a canary (a secret value or token of a test); the lines are kept in ${dir}:\n` +
        formatHits(dir, hits)
      : `canary scan: ${lines} log lines and audit events, ${canaries.length} canaries, no hit`;
  return { hits, lines, canaries: canaries.length, message };
}

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env[LOG_DIR_ENV];
  const dir = given || (await mkdtemp(path.join(tmpdir(), 'zsb-test-logs-')));
  process.env[LOG_DIR_ENV] = dir;
  project.provide('zsbTestLogDir', dir);
  return async () => {
    const result = await runScan(dir, path.resolve(SCAN_REPORT));
    if (result.hits.length > 0) {
      // vitest only logs an error thrown by a teardown: the exit code is set here.
      process.exitCode = 1;
      throw new Error(result.message);
    }
    process.stdout.write(`\n${result.message}\n`);
    if (!given) await rm(dir, { recursive: true, force: true });
  };
}
