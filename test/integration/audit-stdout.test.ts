/**
 * A broker whose audit sink is stdout (the product's default), started inside the test
 * process: its events must not print between the test results, yet the whole-run canary
 * scan must see every one of them (test/support/canary-setup.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { CAPTURE_PREFIX, LOG_DIR_ENV } from '../support/canary-scan.js';
import { type KvBroker, startKvBroker } from '../support/kv-broker.js';
import { stdoutAuditEvents } from '../support/stdout-audit.js';

let fx: KvBroker;
beforeAll(async () => {
  fx = await startKvBroker('audit-stdout', { audit: { stdout: true } });
});
afterAll(async () => fx?.close());

it('keeps stdout audit events out of the test output, and in the canary capture', async () => {
  const printed: string[] = [];
  // Whatever reaches stdout is kept, not printed (and acknowledged, as a terminal would).
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(((
    chunk: unknown,
    encoding?: unknown,
    callback?: unknown,
  ) => {
    printed.push(String(chunk));
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') done();
    return true;
  }) as typeof process.stdout.write);
  let requestId: string | null;
  try {
    const res = await fetch(`${fx.broker.url}/v1/secrets/clouds`, {
      headers: { authorization: `Bearer ${fx.issuer.mint()}` },
    });
    expect(res.status).toBe(200);
    requestId = res.headers.get('x-request-id');
  } finally {
    write.mockRestore();
  }
  expect(printed.join('')).not.toContain('secret.issued');
  const event = stdoutAuditEvents().find((e) => e.requestId === requestId);
  expect(event).toMatchObject({ event: 'secret.issued', secrets: [{ name: 'clouds' }] });

  const dir = process.env[LOG_DIR_ENV];
  expect(dir, 'the canary capture directory').toBeTruthy();
  const captured = readdirSync(dir ?? '')
    .filter((name) => name.startsWith(CAPTURE_PREFIX))
    .flatMap((name) => readFileSync(path.join(dir ?? '', name), 'utf8').split('\n'))
    .filter((line) => line.includes(String(requestId)) && line.includes('secret.issued'));
  expect(captured.map((line) => (JSON.parse(line) as { kind: string }).kind)).toEqual([
    'audit stream',
  ]);
});
