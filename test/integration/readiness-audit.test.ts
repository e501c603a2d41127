/**
 * The running broker reports its audit sink: /readyz fails while the audit file cannot be
 * written, /metrics counts the failed writes, and both recover without a restart.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { until } from '../support/http.js';
import { type KvBroker, startKvBroker } from '../support/kv-broker.js';

let fx: KvBroker;
beforeAll(async () => {
  fx = await startKvBroker('readiness-audit');
});
afterAll(async () => fx?.close());

async function readiness() {
  const res = await fetch(`${fx.broker.url}/readyz`);
  const body = (await res.json()) as {
    ready: boolean;
    checks: Record<string, { status: string; detail: string }>;
  };
  return { status: res.status, body };
}

async function auditFailures(): Promise<number> {
  const text = await (await fetch(`${fx.broker.url}/metrics`)).text();
  return Number(/^zsb_audit_write_failures_total (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
}

const fetchClouds = () =>
  fetch(`${fx.broker.url}/v1/secrets/clouds`, {
    headers: { authorization: `Bearer ${fx.issuer.mint()}` },
  });

it('fails /readyz and counts failed writes while the audit directory is gone; recovers by itself', async () => {
  const ready = await readiness();
  expect(ready.status).toBe(200);
  expect(ready.body.checks.audit).toEqual({ status: 'ok', detail: 'audit sink writable' });
  expect(await auditFailures()).toBe(0);
  expect((await fetchClouds()).status).toBe(200);

  const auditDir = path.dirname(fx.auditFile);
  await rm(auditDir, { recursive: true });
  const refused = await fetchClouds();
  expect(refused.status).toBe(503);
  expect(await refused.text()).not.toContain(fx.secret.password);
  expect(await auditFailures()).toBeGreaterThanOrEqual(1);

  const down = await readiness();
  expect(down.status).toBe(503);
  expect(down.body.ready).toBe(false);
  expect(down.body.checks.audit).toEqual({
    status: 'failing',
    detail: 'audit write failed: ENOENT',
  });
  expect(JSON.stringify(down.body)).not.toContain(fx.dir);

  await mkdir(auditDir);
  await until(async () => (await readiness()).status === 200, 5000);
  expect((await fetchClouds()).status).toBe(200);
  const events = (await readFile(fx.auditFile, 'utf8'))
    .trimEnd()
    .split('\n')
    .map((l) => (JSON.parse(l) as { event: string }).event);
  expect(events).toEqual(['audit.probe', 'secret.issued']);
});
