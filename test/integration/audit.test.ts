/**
 * The audit log against a real OpenBao: one line per issued, denied and revoked request,
 * with lease ids and accessors only as HMACs under the configured key, and no secret
 * value, token, wrapping token, lease id or job JWT anywhere in the file.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { createLogger, type RunningBroker, startBroker } from '../../src/main.js';
import { LogCapture } from '../support/app.js';
import { type DynamicFixture, setUpDynamic } from '../support/dynamic-setup.js';
import { realOpenBao, uniquePrefix } from '../support/real-openbao.js';

const bao = realOpenBao();
const prefix = uniquePrefix('audit');
const KEY = randomBytes(24).toString('hex'); // 48 bytes of key text
const CANARY = `canary-${randomBytes(12).toString('hex')}`;
const hmac = (value: string) =>
  `hmac-sha256:${createHmac('sha256', KEY).update(value).digest('hex')}`;

let dir: string;
let auditFile: string;
let fixture: DynamicFixture;
let issuer: ZuulIssuer;
let broker: RunningBroker;
const logs = new LogCapture();

beforeAll(async () => {
  fixture = await setUpDynamic(prefix, '10m');
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-audit-it-'));
  auditFile = path.join(dir, 'audit', 'audit.jsonl');
  await mkdir(path.dirname(auditFile));
  await writeFile(path.join(dir, 'hmac-key'), `${KEY}\n`, { mode: 0o600 });
  await bao.admin.kvWrite('secret', `${prefix}/clouds`, { password: CANARY });
  const kvPolicy = `kv-${prefix}`;
  await bao.admin.putAclPolicy(
    kvPolicy,
    `path "secret/data/${prefix}/*" { capabilities = ["read"] }\n`,
  );
  const policies = path.join(dir, 'policies');
  await mkdir(policies);
  await writeFile(path.join(policies, 'dynamic.yaml'), fixture.policyYaml);
  await writeFile(
    path.join(policies, 'kv.yaml'),
    `secrets:\n  clouds: { kv: { mount: secret, path: ${prefix}/clouds } }\ngrants:\n  - name: kv\n    match: { tenant: scs, pipeline: periodic-daily }\n    allow: [clouds]\n`,
  );
  const token = await bao.admin.createToken({
    policies: [fixture.brokerPolicy, kvPolicy],
    ttlSeconds: 3600,
    orphan: true,
  });
  await writeFile(path.join(dir, 'token'), token.token, { mode: 0o600 });
  issuer = await ZuulIssuer.start({ modulusLength: 2048 });
  broker = await startBroker(
    parseConfig({
      listen: { host: '127.0.0.1', port: 0 },
      issuers: [{ issuer: issuer.issuer, audience: 'https://secrets.example.org' }],
      openbao: {
        address: bao.address,
        auth: { method: 'token', tokenFile: path.join(dir, 'token') },
        statePrefix: fixture.statePrefix,
        buildTokenRole: fixture.buildTokenRole,
        buildPolicy: fixture.buildPolicy,
      },
      policies,
      audit: { file: auditFile, hmacKeyFile: path.join(dir, 'hmac-key') },
    }),
    { logger: createLogger('info', logs) },
  );
});

afterAll(async () => {
  await broker?.close();
  await issuer?.close();
  await fixture?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function call(route: string, jwt: string, body?: unknown) {
  const res = await fetch(`${broker.url}${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    text,
    requestId: res.headers.get('x-request-id'),
    json: JSON.parse(text) as Record<string, unknown>,
  };
}

/** Every string leaf of a JSON value, with its key. */
function leaves(value: unknown, key = ''): Array<[string, string]> {
  if (typeof value === 'string') return [[key, value]];
  if (Array.isArray(value)) return value.flatMap((v) => leaves(v, key));
  if (value !== null && typeof value === 'object')
    return Object.entries(value).flatMap(([k, v]) => leaves(v, k));
  return [];
}

it('writes one line per issued, denied and revoked request, and no secret', async () => {
  const jwt = issuer.mint();
  const issued = await call('/v1/fetch', jwt, {
    secrets: ['clouds', 'status-page-db', 'bao-token', 'ci-cert'],
  });
  expect(issued.status, issued.text).toBe(200);
  expect(issued.text).toContain(CANARY);
  const wrapped = await call('/v1/fetch', jwt, { secrets: ['clouds'], wrap: true });
  expect(wrapped.status, wrapped.text).toBe(200);
  const denied = await call('/v1/fetch', jwt, { secrets: ['not-granted-anywhere'] });
  expect(denied.status).toBe(403);
  const revoked = await call('/v1/revoke', jwt);
  expect(revoked.status, revoked.text).toBe(200);
  expect(revoked.json.revoked).toBeGreaterThanOrEqual(1);

  const text = await readFile(auditFile, 'utf8');
  const events = text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(events.map((e) => [e.event, e.outcome, e.requestId])).toEqual([
    ['secret.issued', 'issued', issued.requestId],
    ['secret.issued', 'issued', wrapped.requestId],
    ['secret.denied', 'denied', denied.requestId],
    ['build.revoked', 'revoked', revoked.requestId],
  ]);
  const build = (issued.json as { build: string }).build;
  for (const e of events) {
    expect(e.identity).toEqual({
      issuer: issuer.issuer,
      tenant: 'scs',
      project: 'github.com/SovereignCloudStack/standards',
      secret: 'openbao-id',
      pipeline: 'periodic-daily',
      job: 'scs-compliance-check',
      build,
    });
  }
  expect(events[2]).toMatchObject({ secrets: ['(undefined name)'] });
  expect(events[3]).toMatchObject({ revoked: revoked.json.revoked, failed: 0 });

  // Lease ids appear only as their HMAC under the configured key.
  const answered = (issued.json as { secrets: Record<string, { lease: { id: string } | null }> })
    .secrets;
  const dbLease = answered['status-page-db']?.lease?.id ?? '';
  expect(dbLease).not.toBe('');
  const first = events[0] as { secrets: Array<{ name: string; leases: string[]; kind: string }> };
  expect(first.secrets.map((s) => [s.name, s.kind])).toEqual([
    ['clouds', 'kv'],
    ['status-page-db', 'database'],
    ['bao-token', 'token'],
    ['ci-cert', 'pki'],
  ]);
  expect(first.secrets[1]?.leases).toEqual([hmac(dbLease)]);
  const second = events[1] as { secrets: Array<{ wrapped: boolean; accessors: string[] }> };
  expect(second.secrets[0]).toMatchObject({ wrapped: true });
  expect(second.secrets[0]?.accessors[0]).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);

  // Nothing a job received (values, tokens, wrapping tokens, lease ids) nor its JWT.
  const received = [...leaves(issued.json), ...leaves(wrapped.json)]
    .filter(([key, value]) => key !== 'serial_number' && key !== 'build' && value.length >= 12)
    .map(([, value]) => value);
  expect(received.length).toBeGreaterThan(5);
  for (const needle of [CANARY, jwt, KEY, ...received]) {
    const at = text.indexOf(needle);
    expect(at === -1 ? '' : text.slice(Math.max(0, at - 200), at + 40), 'audit leaks').toBe('');
  }
});
