/**
 * /readyz shows the audit sink: an instance whose audit log cannot write serves no secret
 * (fail closed), so it is not ready either, and it becomes ready again by itself once the
 * sink writes again, even when the load balancer sends it no traffic meanwhile.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AuditLog } from '../../../src/audit/log.js';
import { type AuditSink, createAuditLog, openAuditLog } from '../../../src/audit/log.js';
import { staticPolicySource } from '../../../src/broker/policy-store.js';
import { IssuerConfigSchema } from '../../../src/config/schema.js';
import { ZuulIssuer } from '../../../src/dev/zuul-issuer.js';
import { createApp } from '../../../src/http/app.js';
import { createHttpMetrics, type HttpMetrics } from '../../../src/http/metrics.js';
import { createTokenVerifier } from '../../../src/identity/verifier.js';
import { createLogger } from '../../../src/main.js';
import { AUDIENCE, LogCapture, policySetFrom } from '../../support/app.js';
import { FakeOpenBao } from '../../support/fake-openbao.js';
import { until } from '../../support/http.js';
import { TEST_POLICY } from '../../support/policies.js';

const CANARY = `canary-${randomBytes(12).toString('hex')}`;
let issuer: ZuulIssuer;
let dir: string;

beforeAll(async () => {
  issuer = await ZuulIssuer.start({ modulusLength: 2048 });
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-readyz-audit-'));
});
afterAll(async () => {
  await issuer.close();
  await rm(dir, { recursive: true, force: true });
});

async function build(audit: AuditLog, metrics: HttpMetrics) {
  const logger = createLogger('debug', new LogCapture());
  const verifier = createTokenVerifier(
    [IssuerConfigSchema.parse({ issuer: issuer.issuer, audience: AUDIENCE })],
    { maxTokenBytes: 8192, logger },
  );
  const openbao = new FakeOpenBao();
  openbao.put('secret', 'zuul/scs/standards/clouds', { password: CANARY }, 3);
  const app = createApp({
    verifier,
    policies: staticPolicySource(policySetFrom(TEST_POLICY)),
    openbao,
    logger,
    metrics,
    limits: { maxBodyBytes: 16384, maxTokenBytes: 8192 },
    wrapTtlSeconds: 60,
    audit,
  });
  await verifier.refreshKeySets();
  return { app, verifier };
}

interface Readiness {
  status: number;
  body: { ready: boolean; checks: { audit?: { status: string; detail: string } } };
}

async function readiness(app: Awaited<ReturnType<typeof build>>['app']): Promise<Readiness> {
  const res = await app.request('/readyz');
  return { status: res.status, body: (await res.json()) as Readiness['body'] };
}

async function failureCount(metrics: HttpMetrics): Promise<number> {
  const text = await metrics.registry.metrics();
  const match = /^zsb_audit_write_failures_total (\d+)$/m.exec(text);
  return Number(match?.[1] ?? Number.NaN);
}

it('is ready with an audit check while the sink writes, and writes nothing to check it', async () => {
  const lines: string[] = [];
  const sink: AuditSink = {
    append: async (text) => {
      lines.push(text);
    },
    close: async () => {},
  };
  const metrics = createHttpMetrics();
  const { app, verifier } = await build(
    createAuditLog({ sink, hmacKey: randomBytes(32), writeTimeoutMs: 1000 }),
    metrics,
  );
  const ready = await readiness(app);
  expect(ready.status).toBe(200);
  expect(ready.body.checks.audit).toEqual({ status: 'ok', detail: 'audit sink writable' });
  expect(lines).toEqual([]);
  expect(await failureCount(metrics)).toBe(0);
  verifier.close();
});

it('fails /readyz with a value-free detail while the audit directory is gone, counts the failures, and recovers by itself', async () => {
  const auditDir = path.join(dir, 'audit');
  await mkdir(auditDir);
  const file = path.join(auditDir, 'audit.jsonl');
  const metrics = createHttpMetrics();
  const { log } = await openAuditLog({ file, writeTimeoutMs: 2000 }, process.stdout, {
    onWriteFailure: () => metrics.auditWriteFailures.inc(),
  });
  const { app, verifier } = await build(log, metrics);
  const fetchClouds = () =>
    app.request('/v1/secrets/compliance-clouds', {
      headers: { authorization: `Bearer ${issuer.mint()}` },
    });

  expect((await fetchClouds()).status).toBe(200);
  expect((await readiness(app)).body.checks.audit?.status).toBe('ok');

  await rm(auditDir, { recursive: true });
  const refused = await fetchClouds();
  expect(refused.status).toBe(503);
  expect(await refused.text()).not.toContain(CANARY);
  expect(await failureCount(metrics)).toBe(1);

  const down = await readiness(app);
  expect(down.status).toBe(503);
  expect(down.body.ready).toBe(false);
  expect(down.body.checks.audit).toEqual({
    status: 'failing',
    detail: 'audit write failed: ENOENT',
  });
  // The recovery probe that failed counts too; the detail never names the path.
  expect(await failureCount(metrics)).toBe(2);
  expect(JSON.stringify(down.body)).not.toContain(dir);

  // No job request arrives: the readiness checks alone find the sink writable again.
  await mkdir(auditDir);
  await until(async () => (await readiness(app)).status === 200, 5000);
  expect((await readiness(app)).body.checks.audit?.status).toBe('ok');
  expect((await fetchClouds()).status).toBe(200);

  await log.close();
  verifier.close();
  const events = (await readFile(file, 'utf8'))
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(events.map((e) => e.event)).toEqual(['audit.probe', 'secret.issued']);
  expect(events[0]).toMatchObject({ outcome: 'ok' });
});

it('reports a closed audit log as failing', async () => {
  const metrics = createHttpMetrics();
  const sink: AuditSink = { append: async () => {}, close: async () => {} };
  const log = createAuditLog({ sink, hmacKey: randomBytes(32), writeTimeoutMs: 1000 });
  const { app, verifier } = await build(log, metrics);
  await log.close();
  const ready = await readiness(app);
  expect(ready.status).toBe(503);
  expect(ready.body.checks.audit).toEqual({ status: 'failing', detail: 'audit log closed' });
  verifier.close();
});
