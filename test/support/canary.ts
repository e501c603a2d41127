/**
 * Registering canaries and capturing log lines and audit events for the whole-run canary
 * scan (canary-scan.ts). The run directory comes from ZSB_TEST_LOG_DIR (set by the global
 * setup); without it, both do nothing, so a test file also runs on its own.
 */
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import { expect } from 'vitest';
import {
  CANARY_FILE_PREFIX,
  CANARY_PREFIX,
  CAPTURE_PREFIX,
  LOG_DIR_ENV,
  MIN_CANARY_LENGTH,
} from './canary-scan.js';

export { CANARY_PREFIX } from './canary-scan.js';

function runDir(): string | undefined {
  const dir = process.env[LOG_DIR_ENV];
  return dir === undefined || dir === '' ? undefined : dir;
}

function workerSuffix(): string {
  return `${process.pid}-${threadId}`;
}

/** Registers strings that must never appear in any log line or audit event of the run. */
export function registerCanary(...values: readonly string[]): void {
  register(values, undefined);
}

function register(values: readonly string[], scope: string | undefined): void {
  const dir = runDir();
  if (dir === undefined) return;
  const lines = values
    .filter((v) => v.length >= MIN_CANARY_LENGTH)
    .map((v) => `${JSON.stringify(scope === undefined ? { value: v } : { value: v, scope })}\n`)
    .join('');
  if (lines === '') return;
  appendFileSync(path.join(dir, `${CANARY_FILE_PREFIX}${workerSuffix()}.jsonl`), lines, {
    mode: 0o600,
  });
}

/** A fresh secret value with the canary prefix, registered. */
export function canaryValue(label = 'value'): string {
  const value = `${CANARY_PREFIX}${label}-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  registerCanary(value);
  return value;
}

/** Field names of KV data that hold identifiers (logged legitimately), not secrets. */
const IDENTIFIER_FIELDS = new Set(['username', 'user', 'host', 'port', 'database', 'client']);

/**
 * Registers the string values of secret data a test writes (identifier fields aside), for
 * the lines of that test file only: tests seed plain words and paths as values too, which
 * other suites legitimately log as names.
 */
export function registerSecretData(data: unknown): void {
  const values: string[] = [];
  const collect = (item: unknown, field: string): void => {
    if (typeof item === 'string') {
      if (!IDENTIFIER_FIELDS.has(field)) values.push(item);
    } else if (Array.isArray(item)) {
      for (const element of item) collect(element, field);
    } else if (typeof item === 'object' && item !== null) {
      for (const [key, value] of Object.entries(item)) collect(value, key);
    }
  };
  collect(data, '');
  register(values, currentTestFile());
}

/** A JWT's payload and signature segments (its header is shared by many tokens). */
export function registerToken(token: string): void {
  const [, payload = '', signature = ''] = token.split('.');
  registerCanary(payload, signature);
}

function currentTestFile(): string {
  const file = expect.getState().testPath;
  return file ? path.relative(process.cwd(), file) : 'unknown test file';
}

/**
 * Tees log lines or audit events (text of one or more lines) written during a test into the
 * run directory, labelled with what wrote them (`log`, `audit file`, `child stdout` …).
 */
export function captureText(kind: string, text: string): void {
  const dir = runDir();
  if (dir === undefined || text === '') return;
  const file = currentTestFile();
  const lines = text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => `${JSON.stringify({ kind, file, text: line })}\n`)
    .join('');
  if (lines === '') return;
  appendFileSync(path.join(dir, `${CAPTURE_PREFIX}${workerSuffix()}.jsonl`), lines, {
    mode: 0o600,
  });
}

/** Tees a child process's output stream, line by line (a line split across chunks stays whole). */
export function captureStream(kind: string, stream: NodeJS.ReadableStream | null): void {
  if (stream === null || runDir() === undefined) return;
  let pending = '';
  stream.on('data', (chunk: Buffer | string) => {
    pending += chunk.toString();
    const end = pending.lastIndexOf('\n');
    if (end < 0) return;
    captureText(kind, pending.slice(0, end));
    pending = pending.slice(end + 1);
  });
  stream.once('end', () => captureText(kind, pending));
}
