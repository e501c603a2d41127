/**
 * The whole-run canary scan: every log line and audit event written during a test run is
 * kept (teed) in a run directory, together with a registry of canaries, the secret values
 * and tokens the tests created; after the run, one scan looks for every canary in every
 * line. Tests only register and capture; test/support/canary-global-setup.ts scans.
 *
 * This file holds the scan (run by the global setup, outside any test); capturing and
 * registering are in canary.ts.
 *
 * Canary values are written to the registry only (0600, in a 0700 directory that is removed
 * after a clean run); reports name the capture file, line and source, never the value.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const LOG_DIR_ENV = 'ZSB_TEST_LOG_DIR';
/** Any text containing this is a leak, registered or not: for values made with canaryValue(). */
export const CANARY_PREFIX = 'zsb-canary-';
/** Shorter strings are not registered: too likely to occur by chance. */
export const MIN_CANARY_LENGTH = 8;

export const CAPTURE_PREFIX = 'capture-';
export const CANARY_FILE_PREFIX = 'canaries-';

export interface CanaryHit {
  /** Capture file (its name within the run directory) and 1-based line. */
  readonly file: string;
  readonly line: number;
  /** What wrote the line, and in which test file. */
  readonly source: string;
  /** `registered canary` or `canary prefix`: never the value itself. */
  readonly kind: string;
}

/** A registered canary; with `scope`, it counts only in lines of that test file. */
export interface Canary {
  readonly value: string;
  readonly scope?: string;
}

/** Reads every registered canary of the run directory (each also as JSON-escaped text). */
export function readCanaries(dir: string): Canary[] {
  const canaries = new Map<string, Canary>();
  const add = (value: string, scope: string | undefined) => {
    const key = `${scope ?? ''}\u0000${value}`;
    if (!canaries.has(key)) canaries.set(key, scope === undefined ? { value } : { value, scope });
  };
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(CANARY_FILE_PREFIX)) continue;
    for (const line of readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      if (line === '') continue;
      const { value, scope } = JSON.parse(line) as { value?: unknown; scope?: unknown };
      if (typeof value !== 'string' || value.length < MIN_CANARY_LENGTH) continue;
      const where = typeof scope === 'string' ? scope : undefined;
      add(value, where);
      // As it appears inside a JSON log line or audit event.
      add(JSON.stringify(value).slice(1, -1), where);
    }
  }
  return [...canaries.values()];
}

/**
 * Finds every captured line that contains a canary (of its scope) or the canary prefix.
 * Canaries are indexed by their first MIN_CANARY_LENGTH characters, so the scan is linear in
 * the captured text whatever the number of canaries.
 */
export function scanCaptures(
  dir: string,
  canaries: readonly Canary[],
): { hits: CanaryHit[]; lines: number } {
  const byStart = new Map<string, Canary[]>();
  for (const canary of canaries) {
    const start = canary.value.slice(0, MIN_CANARY_LENGTH);
    const list = byStart.get(start);
    if (list) list.push(canary);
    else byStart.set(start, [canary]);
  }
  const hits: CanaryHit[] = [];
  let scanned = 0;
  for (const name of readdirSync(dir).sort()) {
    if (!name.startsWith(CAPTURE_PREFIX)) continue;
    const lines = readFileSync(path.join(dir, name), 'utf8').split('\n');
    lines.forEach((raw, index) => {
      if (raw === '') return;
      scanned += 1;
      let kind = 'unknown output';
      let file = 'unknown test file';
      let text = raw;
      try {
        const record = JSON.parse(raw) as { kind?: unknown; file?: unknown; text?: unknown };
        if (typeof record.kind === 'string') kind = record.kind;
        if (typeof record.file === 'string') file = record.file;
        if (typeof record.text === 'string') text = record.text;
      } catch {
        // A torn line (a worker killed mid-write) is scanned as it is.
      }
      const found = findCanary(text, file, byStart);
      if (found !== undefined) {
        hits.push({ file: name, line: index + 1, source: `${kind} of ${file}`, kind: found });
      }
    });
  }
  return { hits, lines: scanned };
}

function findCanary(
  text: string,
  file: string,
  byStart: ReadonlyMap<string, readonly Canary[]>,
): string | undefined {
  if (text.includes(CANARY_PREFIX)) return 'canary prefix';
  for (let i = 0; i + MIN_CANARY_LENGTH <= text.length; i++) {
    const candidates = byStart.get(text.slice(i, i + MIN_CANARY_LENGTH));
    const hit = candidates?.some(
      (c) => (c.scope === undefined || c.scope === file) && text.startsWith(c.value, i),
    );
    if (hit) return 'registered canary';
  }
  return undefined;
}

/** The report of a scan: one line per hit (file, line, source, kind), never a canary value. */
export function formatHits(dir: string, hits: readonly CanaryHit[]): string {
  return hits
    .map((h) => `${path.join(dir, h.file)}:${h.line}: ${h.kind} in ${h.source}`)
    .join('\n');
}
