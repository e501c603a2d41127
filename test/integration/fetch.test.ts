/**
 * End to end against a real OpenBao: a Zuul-format token from a loopback issuer, the broker
 * serving real HTTP with its own least-privilege OpenBao token, secrets read from KV v2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import type { RunningBroker } from '../../src/main.js';
import { LogCapture } from '../support/app.js';
import { brokerCall } from '../support/http.js';
import { type PolicyBroker, startPolicyBroker } from '../support/policy-broker.js';
import { baoRequest, realOpenBao, uniquePrefix } from '../support/real-openbao.js';

const bao = realOpenBao();
const prefix = uniquePrefix('fetch');
const CLOUDS = { username: 'ci', password: `pw-${prefix}`, multi: 'line one\nline two ✓' };
let env: PolicyBroker;
let issuer: ZuulIssuer;
let broker: RunningBroker;
const logs = new LogCapture();

const POLICY = `
secrets:
  compliance-clouds:
    kv: { mount: secret, path: ${prefix}/scs/standards/clouds }
  project-deploy-key:
    kv: { mount: secret, path: "${prefix}/{tenant}/{project}/deploy" }
  missing-entry:
    kv: { mount: secret, path: ${prefix}/nothing/here }
  outside-broker-acl:
    kv: { mount: secret, path: not-${prefix}/forbidden }
  other-tenant-secret:
    kv: { mount: secret, path: ${prefix}/other/secret }
  picked-keys:
    kv: { mount: secret, path: ${prefix}/picked, keys: [wanted] }
grants:
  - name: compliance-checks
    match:
      tenant: scs
      project: github.com/SovereignCloudStack/standards
      secret: openbao-id
      pipeline: [post, periodic-daily]
      job: "scs-compliance-*"
    allow: [compliance-clouds, project-deploy-key, missing-entry, outside-broker-acl, picked-keys]
    ttl: 15m
  - name: other
    match: { tenant: other }
    allow: [other-tenant-secret]
`;

const call = (method: string, route: string, token: string, body?: unknown) =>
  brokerCall(broker.url, method, route, token, body);

beforeAll(async () => {
  await bao.admin.kvWrite('secret', `${prefix}/scs/standards/clouds`, CLOUDS);
  await bao.admin.kvWrite('secret', `${prefix}/scs/standards/clouds`, CLOUDS); // version 2
  await bao.admin.kvWrite(
    'secret',
    `${prefix}/scs/github.com/SovereignCloudStack/standards/deploy`,
    { key: 'deploy' },
  );
  await bao.admin.kvWrite('secret', `${prefix}/other/secret`, { x: 'y' });
  await bao.admin.kvWrite('secret', `${prefix}/picked`, { wanted: 'w', unwanted: 'u' });
  await bao.admin.kvWrite('secret', `not-${prefix}/forbidden`, { x: 'z' });
  env = await startPolicyBroker('fetch', POLICY, {}, { prefix, logs });
  ({ broker, issuer } = env);
});

afterAll(async () => {
  await env?.close();
});

describe('a Zuul job fetching from a real OpenBao', () => {
  it('gets exactly the granted secret data and its KV version', async () => {
    const token = issuer.mint({ 'build-uuid': 'c'.repeat(32) });
    const res = await call('POST', '/v1/fetch', token, { secrets: ['compliance-clouds'] });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      build: 'c'.repeat(32),
      secrets: { 'compliance-clouds': { data: CLOUDS, version: 2, lease: null, expiresAt: null } },
    });
  });

  it('reads a per-project path filled from the identity', async () => {
    const res = await call('GET', '/v1/secrets/project-deploy-key', issuer.mint());
    expect(res).toEqual({
      status: 200,
      body: { data: { key: 'deploy' }, version: 1, lease: null, expiresAt: null },
    });
  });

  it('answers ungranted and unknown names with the same 403', async () => {
    const a = await call('POST', '/v1/fetch', issuer.mint(), { secrets: ['other-tenant-secret'] });
    const b = await call('POST', '/v1/fetch', issuer.mint(), { secrets: ['does-not-exist'] });
    expect(a.status).toBe(403);
    expect(b.status).toBe(403);
    const { requestId: _1, ...ra } = a.body;
    const { requestId: _2, ...rb } = b.body;
    expect(ra).toEqual(rb);
  });

  it('denies the same job in a pre-merge pipeline', async () => {
    const res = await call('POST', '/v1/fetch', issuer.mint({ pipeline: 'check' }), {
      secrets: ['compliance-clouds'],
    });
    expect(res.status).toBe(403);
  });

  it('delivers a wrapped secret that unwraps once at OpenBao and never again', async () => {
    const res = await call('POST', '/v1/fetch', issuer.mint(), {
      secrets: ['compliance-clouds'],
      wrap: true,
    });
    expect(res.status).toBe(200);
    const entry = (res.body.secrets as Record<string, { wrapped: { token: string; ttl: number } }>)[
      'compliance-clouds'
    ];
    expect(entry?.wrapped.ttl).toBe(60);
    const wrapToken = entry?.wrapped.token ?? '';
    const first = await baoRequest(bao.address, 'POST', 'sys/wrapping/unwrap', {
      token: wrapToken,
    });
    expect(first.status).toBe(200);
    expect((first.body.data as { data: unknown }).data).toEqual(CLOUDS);
    const second = await baoRequest(bao.address, 'POST', 'sys/wrapping/unwrap', {
      token: wrapToken,
    });
    expect(second.status).toBe(400);
  });

  it('wraps only the listed keys of an entry', async () => {
    const res = await call('POST', '/v1/fetch', issuer.mint(), {
      secrets: ['picked-keys'],
      wrap: true,
    });
    expect(res.status).toBe(200);
    const entry = (res.body.secrets as Record<string, { wrapped: { token: string } }>)[
      'picked-keys'
    ];
    const unwrapped = await baoRequest(bao.address, 'POST', 'sys/wrapping/unwrap', {
      token: entry?.wrapped.token ?? '',
    });
    expect(unwrapped.status).toBe(200);
    expect(unwrapped.body.data).toEqual({ wanted: 'w' });
  });

  it('maps a granted but missing entry to 502, and a path outside its own ACL to 502', async () => {
    const missing = await call('POST', '/v1/fetch', issuer.mint(), { secrets: ['missing-entry'] });
    expect(missing.status).toBe(502);
    const outside = await call('POST', '/v1/fetch', issuer.mint(), {
      secrets: ['outside-broker-acl'],
    });
    expect(outside.status).toBe(502);
    expect(JSON.stringify(outside.body)).not.toContain('permission denied');
  });

  it('reports whoami and readiness', async () => {
    const who = await call('GET', '/v1/whoami', issuer.mint());
    expect(who.body.allowed).toEqual([
      'compliance-clouds',
      'missing-entry',
      'outside-broker-acl',
      'picked-keys',
      'project-deploy-key',
    ]);
    const ready = await fetch(`${broker.url}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as {
      ready: boolean;
      checks: { openbao: { detail: string } };
    };
    expect(body.ready).toBe(true);
    expect(body.checks.openbao.detail).toContain(bao.version);
  });

  it('rejects a token from an unconfigured issuer with 401', async () => {
    const stranger = await ZuulIssuer.start({ modulusLength: 2048 });
    try {
      const res = await call('POST', '/v1/fetch', stranger.mint(), {
        secrets: ['compliance-clouds'],
      });
      expect(res.status).toBe(401);
    } finally {
      await stranger.close();
    }
  });

  it('never logged the secret values or tokens', () => {
    const text = logs.text();
    expect(logs.lines.length).toBeGreaterThan(5);
    expect(text).not.toContain(CLOUDS.password);
    expect(text).not.toContain('line two');
  });
});
