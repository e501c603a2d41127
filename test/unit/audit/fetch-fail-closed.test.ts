/**
 * Fail closed: when the audit sink cannot write, no secret leaves the broker. The fetch
 * routes answer 503 `unavailable` (with Retry-After), whatever this request created is
 * undone, and neither the body nor the log carries the secret.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type AuditLog,
  type AuditSink,
  createAuditLog,
  openAuditLog,
} from '../../../src/audit/log.js';
import { staticPolicySource } from '../../../src/broker/policy-store.js';
import { IssuerConfigSchema } from '../../../src/config/schema.js';
import { ZuulIssuer } from '../../../src/dev/zuul-issuer.js';
import { createApp } from '../../../src/http/app.js';
import { createHttpMetrics } from '../../../src/http/metrics.js';
import { createTokenVerifier } from '../../../src/identity/verifier.js';
import { createLogger } from '../../../src/main.js';
import { AUDIENCE, LogCapture, policySetFrom } from '../../support/app.js';
import { FakeOpenBao } from '../../support/fake-openbao.js';
import { TEST_POLICY } from '../../support/policies.js';

const CANARY = `canary-${randomBytes(12).toString('hex')}`;
let issuer: ZuulIssuer;
let dir: string;

beforeAll(async () => {
  issuer = await ZuulIssuer.start({ modulusLength: 2048 });
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-audit-app-'));
});
afterAll(async () => {
  await issuer.close();
  await rm(dir, { recursive: true, force: true });
});

function build(audit: AuditLog) {
  const logs = new LogCapture();
  const logger = createLogger('debug', logs);
  const verifier = createTokenVerifier(
    [IssuerConfigSchema.parse({ issuer: issuer.issuer, audience: AUDIENCE })],
    { maxTokenBytes: 8192, logger },
  );
  const openbao = new FakeOpenBao();
  openbao.put('secret', 'zuul/scs/standards/clouds', { password: CANARY }, 3);
  openbao.put('secret', 'zuul/scs/wrapped', { w: CANARY });
  openbao.put('secret', 'zuul/scs/plain', { p: 'y' });
  const app = createApp({
    verifier,
    policies: staticPolicySource(policySetFrom(TEST_POLICY)),
    openbao,
    logger,
    metrics: createHttpMetrics(),
    limits: { maxBodyBytes: 16384, maxTokenBytes: 8192 },
    wrapTtlSeconds: 60,
    audit,
  });
  const fetchSecrets = (secrets: string[], wrap = false) =>
    app.request('/v1/fetch', {
      method: 'POST',
      headers: { authorization: `Bearer ${issuer.mint()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ secrets, wrap }),
    });
  return { app, openbao, logs, verifier, fetchSecrets };
}

async function expectFailClosed(res: Response, logs: LogCapture) {
  const text = await res.text();
  expect(res.status).toBe(503);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  expect(res.headers.get('retry-after')).toBe('5');
  expect(JSON.parse(text)).toMatchObject({
    status: 503,
    code: 'unavailable',
    detail: 'the audit log is unavailable',
  });
  expect(text).not.toContain(CANARY);
  expect(logs.text()).not.toContain(CANARY);
  const line = logs
    .entries()
    .filter((e) => e.msg === 'request')
    .at(-1);
  expect(line).toMatchObject({ status: 503, outcome: 'unavailable' });
  expect(String(line?.reason)).toMatch(/^audit: /);
}

describe('a sink that fails every write (disk full)', () => {
  const full: AuditSink = {
    append: async () => {
      throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
    },
    close: async () => {},
  };
  let t: ReturnType<typeof build>;
  beforeEach(() => {
    t = build(createAuditLog({ sink: full, hmacKey: randomBytes(32), writeTimeoutMs: 1000 }));
  });

  it('serves no secret: POST /v1/fetch answers 503 unavailable', async () => {
    await expectFailClosed(await t.fetchSecrets(['compliance-clouds']), t.logs);
    expect(t.logs.text()).toContain('ENOSPC');
  });

  it('serves no secret on GET /v1/secrets/{name} either', async () => {
    const res = await t.app.request('/v1/secrets/compliance-clouds', {
      headers: { authorization: `Bearer ${issuer.mint()}` },
    });
    await expectFailClosed(res, t.logs);
  });

  it('revokes the wrapping token it created before answering', async () => {
    const res = await t.fetchSecrets(['wrapped-only'], true);
    await expectFailClosed(res, t.logs);
    expect(t.openbao.revokedAccessors).toEqual(['wrap-accessor-1']);
  });

  it('answers a denial it cannot record with 503 too', async () => {
    await expectFailClosed(await t.fetchSecrets(['someone-elses']), t.logs);
  });
});

it('fails closed when the audit directory is removed, and serves again once it is back', async () => {
  const logsDir = path.join(dir, 'audit');
  await mkdir(logsDir);
  const file = path.join(logsDir, 'audit.jsonl');
  const { log } = await openAuditLog({ file, writeTimeoutMs: 2000 });
  const t = build(log);

  const ok = await t.fetchSecrets(['compliance-clouds']);
  expect(ok.status).toBe(200);
  expect(await ok.text()).toContain(CANARY);

  await rm(logsDir, { recursive: true });
  await expectFailClosed(await t.fetchSecrets(['compliance-clouds']), t.logs);

  await mkdir(logsDir);
  expect((await t.fetchSecrets(['compliance-clouds'])).status).toBe(200);
  await log.close();
  t.verifier.close();
  const events = (await readFile(file, 'utf8'))
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(events).toHaveLength(1);
  expect(events[0]).toMatchObject({
    event: 'secret.issued',
    secrets: [{ name: 'compliance-clouds' }],
  });
});

it('writes the event before the answer leaves, one per request', async () => {
  const lines: string[] = [];
  let answered = false;
  const recording: AuditSink = {
    append: async (text) => {
      expect(answered).toBe(false);
      lines.push(text);
    },
    close: async () => {},
  };
  const t = build(
    createAuditLog({ sink: recording, hmacKey: randomBytes(32), writeTimeoutMs: 1000 }),
  );
  const res = await t.fetchSecrets(['compliance-clouds', 'never-wrapped']);
  answered = true;
  expect(res.status).toBe(200);
  expect(lines).toHaveLength(1);
  const event = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
  expect(event).toMatchObject({
    event: 'secret.issued',
    outcome: 'issued',
    requestId: res.headers.get('x-request-id'),
    identity: { tenant: 'scs', job: 'scs-compliance-check' },
    secrets: [
      { name: 'compliance-clouds', grant: 'compliance-wrap-ok', kind: 'kv', version: 3 },
      { name: 'never-wrapped', kind: 'kv', wrapped: false },
    ],
  });
  expect(lines[0]).not.toContain(CANARY);
  t.verifier.close();
});
