import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../../support/app.js';
import { CLOUDS, TEST_POLICY } from '../../support/policies.js';

let t: Awaited<ReturnType<typeof buildTestApp>>;

beforeAll(async () => {
  t = await buildTestApp(TEST_POLICY);
  t.openbao.put('secret', 'zuul/scs/standards/clouds', CLOUDS, 7);
  t.openbao.put('secret', 'zuul/scs/github.com/SovereignCloudStack/standards/deploy', {
    private_key: 'deploy-key-material',
    comment: 'not delivered: the policy lists keys',
  });
  t.openbao.put('secret', 'zuul/scs/plain', { value: 'plain' });
});
afterAll(async () => t.close());

function post(token: string, body: unknown) {
  return t.app.request('/v1/fetch', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('POST /v1/fetch', () => {
  it('returns exactly the granted secret data with its version', async () => {
    const token = t.issuer.mint({ 'build-uuid': 'a'.repeat(32) });
    const res = await post(token, { secrets: ['compliance-clouds'] });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({
      build: 'a'.repeat(32),
      secrets: { 'compliance-clouds': { data: CLOUDS, version: 7, lease: null, expiresAt: null } },
    });
  });

  it('fills placeholders from the identity and delivers only the listed keys', async () => {
    const res = await post(t.issuer.mint(), {
      secrets: ['project-deploy-key', 'compliance-clouds'],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { secrets: Record<string, { data: unknown }> };
    expect(body.secrets['project-deploy-key']?.data).toEqual({
      private_key: 'deploy-key-material',
    });
    expect(Object.keys(body.secrets).sort()).toEqual(['compliance-clouds', 'project-deploy-key']);
  });

  it('returns wrapping tokens instead of values with wrap: true', async () => {
    const res = await post(t.issuer.mint(), { secrets: ['compliance-clouds'], wrap: true });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      secrets: Record<string, { wrapped: { token: string; ttl: number; expiresAt: string } }>;
    };
    const entry = body.secrets['compliance-clouds'];
    expect(entry?.wrapped.token).toMatch(/^wrap-token-/);
    expect(entry?.wrapped.ttl).toBe(60);
    expect(Date.parse(entry?.wrapped.expiresAt ?? '')).toBeGreaterThan(Date.now());
    expect(JSON.stringify(body)).not.toContain(CLOUDS.password);
  });
});

describe('GET /v1/secrets/{name}', () => {
  it('returns the single entry object', async () => {
    const res = await t.app.request('/v1/secrets/compliance-clouds', {
      headers: { authorization: `Bearer ${t.issuer.mint()}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: CLOUDS, version: 7, lease: null, expiresAt: null });
  });

  it('accepts ?wrap=true', async () => {
    const res = await t.app.request('/v1/secrets/compliance-clouds?wrap=true', {
      headers: { authorization: `Bearer ${t.issuer.mint()}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toHaveProperty('wrapped.token');
  });
});

describe('GET /v1/whoami', () => {
  it('returns the verified identity and what it may fetch, no values', async () => {
    const token = t.issuer.mint({ 'build-uuid': 'b'.repeat(32) });
    const res = await t.app.request('/v1/whoami', {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      identity: {
        issuer: t.issuer.issuer,
        tenant: 'scs',
        project: 'github.com/SovereignCloudStack/standards',
        secret: 'openbao-id',
        build: 'b'.repeat(32),
        job: 'scs-compliance-check',
        pipeline: 'periodic-daily',
      },
      allowed: ['compliance-clouds', 'never-wrapped', 'project-deploy-key', 'wrapped-only'],
      grants: ['compliance-checks', 'compliance-wrap-ok', 'wrapped'],
    });
    expect(JSON.stringify(body)).not.toContain(CLOUDS.password);
  });
});
