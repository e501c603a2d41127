/**
 * The broker against a Zuul key set that misbehaves: a fault proxy sits between the broker's
 * key set fetches and a loopback Zuul issuer, and secrets come from the real OpenBao. A failed
 * refresh must keep the last good key set serving (200) while it is young enough, a key set
 * older than its maximum age must stop being used (503), and a redirect must never be
 * followed. The clock is fake, so "older than" needs no waiting.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Hono } from 'hono';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { staticPolicySource } from '../../src/broker/policy-store.js';
import { createApp } from '../../src/http/app.js';
import { createHttpMetrics } from '../../src/http/metrics.js';
import type { AppEnv } from '../../src/http/types.js';
import { createTokenVerifier, type ZuulTokenVerifier } from '../../src/identity/verifier.js';
import { createLogger } from '../../src/main.js';
import { createOpenBaoClient } from '../../src/openbao/client.js';
import { LogCapture, policySetFrom } from '../support/app.js';
import { type FaultMode, FaultProxy } from '../support/fault-proxy.js';
import { cloudsPolicy } from '../support/kv-broker.js';
import { realOpenBao, uniquePrefix } from '../support/real-openbao.js';
import {
  type FakeClock,
  fakeClock,
  issuerConfigFor,
  startZuulIssuer,
  type ZuulIssuer,
} from '../support/zuul.js';

const MAX_STALE_SECONDS = 600;
const MIN_REFETCH_SECONDS = 30;
const KEYSET_TIMEOUT_MS = 500;
const bao = realOpenBao();
const prefix = uniquePrefix('faults-keyset');
const CLOUDS = { username: 'ci', password: `pw-${prefix}` };

const POLICY = cloudsPolicy(prefix, 'faults');

let dir: string;
let clock: FakeClock;
let issuer: ZuulIssuer;
let rogue: ZuulIssuer;
let proxy: FaultProxy;
let verifier: ZuulTokenVerifier;
let app: Hono<AppEnv>;
const metrics = createHttpMetrics();
const logs = new LogCapture();

interface Answer {
  readonly status: number;
  readonly retryAfter: string | null;
  readonly body: Record<string, unknown>;
}

async function get(route: string, token?: string): Promise<Answer> {
  const res = await app.request(route, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as Record<string, unknown>,
  };
}

const readSecret = (token = issuer.mint()) => get('/v1/secrets/clouds', token);

async function issuersCheck(): Promise<{ status: number; ready: unknown; issuers: unknown }> {
  const answer = await get('/readyz');
  const checks = answer.body.checks as { issuers: unknown };
  return { status: answer.status, ready: answer.body.ready, issuers: checks.issuers };
}

async function refreshCount(outcome: string): Promise<number> {
  const metric = await metrics.keySetRefreshes.get();
  return metric.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-faults-keyset-'));
  clock = fakeClock();
  await bao.admin.kvWrite('secret', `${prefix}/clouds`, CLOUDS);
  await bao.admin.putAclPolicy(
    `zsb-${prefix}`,
    `path "secret/data/${prefix}/*" { capabilities = ["read"] }\n`,
  );
  const brokerToken = (
    await bao.admin.createToken({ policies: [`zsb-${prefix}`], ttlSeconds: 3600, orphan: true })
  ).token;
  [issuer, rogue] = await Promise.all([
    startZuulIssuer({ now: () => clock.now() }),
    startZuulIssuer({ now: () => clock.now() }),
  ]);
  proxy = await FaultProxy.start(issuer.issuer);
  const logger = createLogger('debug', logs);
  verifier = createTokenVerifier(
    [
      issuerConfigFor(issuer, {
        jwksUrl: `${proxy.url}/oidc/jwks`,
        jwks: {
          timeoutMs: KEYSET_TIMEOUT_MS,
          maxBytes: 65536,
          maxStaleSeconds: MAX_STALE_SECONDS,
          minRefetchIntervalSeconds: MIN_REFETCH_SECONDS,
        },
      }),
    ],
    {
      maxTokenBytes: 8192,
      now: () => clock.now(),
      logger,
      onKeySetRefresh: (outcome) => metrics.keySetRefreshes.inc({ outcome }),
    },
  );
  await verifier.refreshKeySets();
  proxy.resetCount();
  app = createApp({
    verifier,
    policies: staticPolicySource(policySetFrom(POLICY)),
    openbao: createOpenBaoClient({
      addresses: [bao.address],
      timeoutMs: 5000,
      maxConnections: 4,
      token: () => brokerToken,
    }),
    logger,
    metrics,
    limits: { maxBodyBytes: 16384, maxTokenBytes: 8192 },
    wrapTtlSeconds: 60,
    now: () => clock.now(),
  });
});

afterEach(async () => {
  await proxy.setMode({ kind: 'pass' });
  proxy.resetCount();
});

afterAll(async () => {
  verifier?.close();
  await proxy?.close();
  await Promise.all([issuer?.close(), rogue?.close()]);
  await rm(dir, { recursive: true, force: true });
});

describe('the Zuul key set behind a fault proxy', () => {
  it('serves with the key set fetched through the proxy', async () => {
    for (let i = 0; i < 3; i++) {
      const answer = await readSecret();
      expect(answer.status).toBe(200);
      expect(answer.body.data).toEqual(CLOUDS);
    }
    expect(proxy.requests).toBe(0); // cached: no key set fetch per request
  });

  it.each<[string, FaultMode, string, string]>([
    ['refuses connections', { kind: 'refuse' }, 'fetch failed', 'unreachable'],
    [
      'is slower than the timeout',
      { kind: 'delay', ms: KEYSET_TIMEOUT_MS * 4 },
      'timeout',
      'timeout',
    ],
    ['resets mid-response', { kind: 'reset', bytes: 20 }, 'fetch failed', 'unreachable'],
    ['answers 500', { kind: 'status', status: 500 }, 'http status 500', 'http_status'],
    ['answers 503', { kind: 'status', status: 503 }, 'http status 503', 'http_status'],
    ['answers 429', { kind: 'status', status: 429 }, 'http status 429', 'http_status'],
    ['answers garbage', { kind: 'garbage' }, 'invalid json', 'invalid'],
    [
      'answers a huge body with its length',
      { kind: 'oversize', bytes: 1024 * 1024 },
      'response too large',
      'too_large',
    ],
    [
      'answers a huge body without a length',
      { kind: 'oversize', bytes: 1024 * 1024, declareLength: false },
      'response too large',
      'too_large',
    ],
  ])(
    'the issuer %s while the cache is fresh: 200 with the previous key set, readiness degraded; recovers',
    async (_what, mode, reason, outcome) => {
      const token = issuer.mint();
      const failuresBefore = await refreshCount(outcome);
      await proxy.setMode(mode);
      clock.advance(60);
      await verifier.refreshKeySets();
      if (mode.kind !== 'refuse') expect(proxy.requests).toBe(1);
      expect(await refreshCount(outcome)).toBe(failuresBefore + 1);

      const answer = await readSecret(token);
      expect(answer.status).toBe(200);
      expect(answer.body.data).toEqual(CLOUDS);
      const degraded = await issuersCheck();
      expect(degraded.status).toBe(200);
      expect(degraded.ready).toBe(true);
      expect(degraded.issuers).toMatchObject({ status: 'degraded' });
      expect(JSON.stringify(degraded.issuers)).toContain(reason);

      await proxy.setMode({ kind: 'pass' });
      await verifier.refreshKeySets();
      expect((await readSecret()).status).toBe(200);
      const recovered = await issuersCheck();
      expect(recovered).toMatchObject({ status: 200, ready: true, issuers: { status: 'ok' } });
    },
  );

  it('a redirect to another key set is refused, never followed, and its keys never sign in', async () => {
    const okBefore = await refreshCount('ok');
    await proxy.setMode({ kind: 'redirect', location: rogue.jwksUrl });
    clock.advance(60);
    await verifier.refreshKeySets();
    expect(await refreshCount('redirect')).toBe(1);
    expect(JSON.stringify((await issuersCheck()).issuers)).toContain('redirect refused');

    // Signed by the rogue key under the same kid: the signature check fails, the on-demand
    // refetch hits the redirect again, and the answer is a plain 401.
    const forged = rogue.sign(issuer.buildClaims());
    const answer = await readSecret(forged);
    expect(answer.status).toBe(401);
    expect(answer.body).toMatchObject({ code: 'unauthenticated' });
    expect(rogue.jwksRequests).toBe(0);
    expect(await refreshCount('ok')).toBe(okBefore);

    await proxy.setMode({ kind: 'pass' });
    await verifier.refreshKeySets();
    expect((await readSecret()).status).toBe(200);
    expect(await refreshCount('ok')).toBe(okBefore + 1);
  });

  it('a key set older than its maximum age stops serving: 503, /readyz failing; recovers', async () => {
    await proxy.setMode({ kind: 'refuse' });
    clock.advance(MAX_STALE_SECONDS + 1);
    const stale = await readSecret();
    expect(stale.status).toBe(503);
    expect(stale.body).toMatchObject({ type: 'about:blank', status: 503, code: 'unavailable' });
    expect(stale.retryAfter).toMatch(/^\d+$/);
    const failing = await issuersCheck();
    expect(failing).toMatchObject({ status: 503, ready: false, issuers: { status: 'failing' } });

    // Back up: the next on-demand refetch (at most one per interval) brings the keys back.
    await proxy.setMode({ kind: 'pass' });
    clock.advance(MIN_REFETCH_SECONDS + 1);
    const answer = await readSecret();
    expect(answer.status).toBe(200);
    expect(answer.body.data).toEqual(CLOUDS);
    const ready = await issuersCheck();
    expect(ready).toMatchObject({ status: 200, ready: true, issuers: { status: 'ok' } });
  });

  it('a key set URL that answers HTML: /readyz and the log name the URL and what came back', async () => {
    await proxy.setMode({ kind: 'garbage' });
    clock.advance(60);
    await verifier.refreshKeySets();
    const expected = `invalid json from ${proxy.url}/oidc/jwks (200, application/json, body starts "<html><body>502 Bad Gateway (not JSON at all</bo...")`;
    const degraded = await issuersCheck();
    expect(degraded.issuers).toMatchObject({ status: 'degraded' });
    expect(JSON.stringify(degraded.issuers)).toContain(JSON.stringify(expected).slice(1, -1));
    const logged = logs
      .entries()
      .filter((e) => e.msg === 'key set fetch failed, keeping the previous key set');
    expect(logged.at(-1)).toMatchObject({ issuer: issuer.issuer, reason: expected });
  });

  it('Zuul rotates its key and signs at once: the next job gets 200, even right after a forged kid', async () => {
    // A forged token with an invented kid takes the unknown-kid refresh slot first.
    const forged = issuer.mint({}, { header: { kid: 'RS256-999' } });
    expect((await readSecret(forged)).status).toBe(401);
    await issuer.rotateKey();
    const answer = await readSecret(issuer.mint());
    expect(answer.status).toBe(200);
    expect(answer.body.data).toEqual(CLOUDS);
    // Two refreshes: the forged kid's, and the one the real job waited for.
    expect(proxy.requests).toBe(2);
  });

  it('exposes key set refresh outcomes on /metrics, without the issuer or its URL', async () => {
    const res = await app.request('/metrics');
    const text = await res.text();
    expect(text).toMatch(/zsb_keyset_refreshes_total\{outcome="ok"\} [1-9]/);
    for (const outcome of ['unreachable', 'timeout', 'http_status', 'invalid', 'too_large']) {
      expect(text).toMatch(
        new RegExp(`zsb_keyset_refreshes_total\\{outcome="${outcome}"\\} [1-9]`),
      );
    }
    expect(text).not.toContain(issuer.issuer);
    expect(text).not.toContain(proxy.url);
  });
});
