import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ZuulIssuerMode } from '../../../src/dev/zuul-issuer.js';
import { IssuerKeySet, UNKNOWN_KID_REFRESH_SPACING_MS } from '../../../src/identity/keyset.js';
import type { ZuulTokenVerifier } from '../../../src/identity/verifier.js';
import { createTokenVerifier } from '../../../src/identity/verifier.js';
import {
  type FakeClock,
  fakeClock,
  issuerConfigFor,
  startZuulIssuer,
  type ZuulIssuer,
} from '../../support/zuul.js';

const MIN_REFETCH_SECONDS = 30;
const MAX_STALE_SECONDS = 600;
const SPACING_MS = UNKNOWN_KID_REFRESH_SPACING_MS;

let clock: FakeClock;
let timers: FakeTimers;
let issuer: ZuulIssuer;
let other: ZuulIssuer;
let verifier: ZuulTokenVerifier;
let fetchesBefore = 0;

/**
 * Sleeps on the fake clock: a sleeper wakes when the test advances the clock past its
 * deadline, so waiting for an unknown-kid refresh costs no real time.
 */
interface FakeTimers {
  sleep(ms: number): Promise<void>;
  /** Advances the clock by `ms` and wakes every sleeper that is due. */
  tick(ms: number): Promise<void>;
}

function fakeTimers(on: () => FakeClock): FakeTimers {
  let sleepers: Array<{ at: number; wake: () => void }> = [];
  return {
    sleep: (ms) =>
      new Promise<void>((wake) => {
        sleepers.push({ at: on().now() + ms, wake });
      }),
    async tick(ms) {
      on().advance(ms / 1000);
      const due = sleepers.filter((s) => s.at <= on().now());
      sleepers = sleepers.filter((s) => s.at > on().now());
      for (const s of due) s.wake();
      // Let woken waiters reach their fetch before the clock moves again.
      await new Promise((resolve) => setTimeout(resolve, 5));
    },
  };
}

/** Key set requests the issuer saw since this test's verifier was created. */
function fetches(): number {
  return issuer.jwksRequests - fetchesBefore;
}

// One issuer for the whole file: key generation dominates the run time otherwise.
beforeAll(async () => {
  [issuer, other] = await Promise.all([
    startZuulIssuer({ now: () => clock.now() }),
    startZuulIssuer({ now: () => clock.now() }),
  ]);
});

afterAll(async () => {
  await Promise.all([issuer.close(), other.close()]);
});

beforeEach(async () => {
  clock = fakeClock();
  timers = fakeTimers(() => clock);
  issuer.setMode('ok');
  other.setMode('ok');
  fetchesBefore = issuer.jwksRequests;
  verifier = createTokenVerifier(
    [
      issuerConfigFor(issuer, {
        jwks: {
          timeoutMs: 300,
          maxStaleSeconds: MAX_STALE_SECONDS,
          minRefetchIntervalSeconds: MIN_REFETCH_SECONDS,
        },
      }),
    ],
    { maxTokenBytes: 8192, now: () => clock.now(), sleep: (ms) => timers.sleep(ms) },
  );
  await verifier.refreshKeySets();
});

afterEach(() => {
  verifier.close();
});

function statusOf(): string {
  const [first] = verifier.status();
  return first?.status ?? 'missing';
}

describe('key rotation', () => {
  it('fetches the key set once for a new kid, then uses the cache', async () => {
    expect(fetches()).toBe(1);
    const kidBefore = issuer.kid;
    await issuer.rotateKey();
    expect(issuer.kid).not.toBe(kidBefore);
    expect((await verifier.verify(issuer.mint())).ok).toBe(true);
    expect(fetches()).toBe(2);
    expect((await verifier.verify(issuer.mint())).ok).toBe(true);
    expect(fetches()).toBe(2);
  });

  it('keeps accepting tokens signed with the previous, still published key', async () => {
    const old = issuer.mint();
    await issuer.rotateKey();
    expect((await verifier.verify(issuer.mint())).ok).toBe(true);
    expect((await verifier.verify(old)).ok).toBe(true);
  });

  it('after a key reset, refetches once when the reused kid RS256-0 fails its signature', async () => {
    if (issuer.kid !== 'RS256-0') {
      // An earlier rotation moved on; start this story from a version-0 key the broker knows.
      await issuer.resetKeys();
      await verifier.refreshKeySets();
      fetchesBefore = issuer.jwksRequests - 1;
    }
    const beforeReset = issuer.mint();
    await issuer.resetKeys();
    expect(issuer.kid).toBe('RS256-0');
    expect((await verifier.verify(issuer.mint())).ok).toBe(true);
    expect(fetches()).toBe(2);
    // The old key is gone: its tokens now fail, and the rate limit stops another fetch.
    expect(await verifier.verify(beforeReset)).toEqual({
      ok: false,
      failure: { kind: 'invalid_token', reason: 'bad signature' },
    });
    expect(fetches()).toBe(2);
  });
});

describe('unknown kids', () => {
  const forged = (i: number) => issuer.mint({}, { header: { kid: `RS256-${100 + i}` } });
  const unknownKid = { ok: false, failure: { kind: 'invalid_token', reason: 'unknown kid' } };

  it('a burst of unknown kids shares one refresh', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => verifier.verify(forged(i))),
    );
    for (const result of results) expect(result).toEqual(unknownKid);
    expect(fetches()).toBe(2);
  });

  it('a flood of invented kids costs at most one key set fetch per spacing', async () => {
    // 200 different kids over 10 s (one every 50 ms), each waiting for its refresh.
    const FLOOD = 200;
    const STEP_MS = 50;
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < FLOOD; i += 1) {
      pending.push(verifier.verify(forged(i)));
      await timers.tick(STEP_MS);
    }
    await timers.tick(SPACING_MS);
    for (const result of await Promise.all(pending)) expect(result).toEqual(unknownKid);
    const floodMs = FLOOD * STEP_MS;
    expect(fetches() - 1).toBeLessThanOrEqual(1 + Math.ceil(floodMs / SPACING_MS));
    expect(fetches() - 1).toBeGreaterThan(1);
  });

  it('a real rotation right after an invented kid is accepted after at most one spacing', async () => {
    expect(await verifier.verify(forged(0))).toEqual(unknownKid);
    expect(fetches()).toBe(2);
    // Zuul rotates a moment later and signs the next job's token with the new key at once.
    await issuer.rotateKey();
    await timers.tick(10);
    const started = clock.now();
    let settled = false;
    const real = verifier.verify(issuer.mint()).finally(() => {
      settled = true;
    });
    await timers.tick(0);
    await timers.tick(SPACING_MS / 2);
    expect(settled).toBe(false); // waiting for the next refresh, not refused
    await timers.tick(SPACING_MS / 2);
    expect((await real).ok).toBe(true);
    expect(clock.now() - started).toBeLessThanOrEqual(SPACING_MS);
    expect(fetches()).toBe(3);
    // The new key is cached now: no further fetch.
    expect((await verifier.verify(issuer.mint())).ok).toBe(true);
    expect(fetches()).toBe(3);
  });

  it('a job arriving while a refresh is already due joins it', async () => {
    await verifier.verify(forged(0));
    await issuer.rotateKey();
    const first = verifier.verify(issuer.mint());
    await timers.tick(0); // it arrives now, and its refresh is due one spacing after the last
    await timers.tick(100);
    const second = verifier.verify(issuer.mint());
    await timers.tick(0);
    await timers.tick(SPACING_MS);
    expect((await first).ok).toBe(true);
    expect((await second).ok).toBe(true);
    expect(fetches()).toBe(3);
  });
});

describe('refetch rate limit', () => {
  it('also limits refetches caused by bad signatures on a known kid', async () => {
    for (let i = 0; i < 10; i += 1) {
      const forged = other.mint({ iss: issuer.issuer }, { header: { kid: issuer.kid } });
      const result = await verifier.verify(forged);
      expect(result).toEqual({
        ok: false,
        failure: { kind: 'invalid_token', reason: 'bad signature' },
      });
    }
    expect(fetches()).toBe(2);
  });
});

describe('issuer outages', () => {
  it('keep verifying from a fresh cache while the issuer is down', async () => {
    issuer.setMode('down');
    clock.advance(120);
    await verifier.refreshKeySets();
    expect(statusOf()).toBe('degraded');
    expect((await verifier.verify(issuer.mint())).ok).toBe(true);
  });

  it('answer unavailable, not invalid_token, once the cache is older than maxStale', async () => {
    issuer.setMode('down');
    clock.advance(MAX_STALE_SECONDS + 1);
    expect(await verifier.verify(issuer.mint())).toEqual({
      ok: false,
      failure: { kind: 'unavailable', reason: 'key set unavailable' },
    });
    expect(statusOf()).toBe('failing');

    // Recovery: the next permitted refetch installs a fresh set.
    issuer.setMode('ok');
    clock.advance(MIN_REFETCH_SECONDS);
    expect((await verifier.verify(issuer.mint())).ok).toBe(true);
    expect(statusOf()).toBe('ok');
  });

  it('answer unavailable when no key set was ever fetched', async () => {
    const down = other;
    down.setMode('http500');
    const cold = createTokenVerifier([issuerConfigFor(down)], {
      maxTokenBytes: 8192,
      now: () => clock.now(),
    });
    try {
      await cold.refreshKeySets();
      expect(cold.status()[0]).toMatchObject({ status: 'failing' });
      expect(cold.status()[0]?.detail).toContain('http status 500');
      const result = await cold.verify(down.mint());
      expect(result).toMatchObject({ ok: false, failure: { kind: 'unavailable' } });
    } finally {
      cold.close();
    }
  });

  it.each<ZuulIssuerMode>(['garbage', 'oversize', 'redirect', 'http500', 'slow', 'down'])(
    'keep the previous key set when the issuer answers %s',
    async (mode) => {
      const token = issuer.mint();
      issuer.setMode(mode);
      clock.advance(60);
      await verifier.refreshKeySets();
      expect(fetches()).toBe(2);
      expect(statusOf()).toBe('degraded');
      expect((await verifier.verify(token)).ok).toBe(true);
      issuer.setMode('ok');
      await verifier.refreshKeySets();
      expect(statusOf()).toBe('ok');
    },
  );
});

describe('IssuerKeySet', () => {
  function keySetWith(fetchImpl: typeof fetch, maxBytes = 65536): IssuerKeySet {
    return new IssuerKeySet({
      issuer: 'https://zuul.example.org',
      jwksUrl: 'https://zuul.example.org/oidc/jwks',
      algorithms: ['RS256'],
      timeoutMs: 1000,
      maxBytes,
      refreshIntervalSeconds: 300,
      maxStaleSeconds: 3600,
      minRefetchIntervalSeconds: 30,
      fetchImpl,
      now: () => clock.now(),
    });
  }

  it('uses only public signature keys for allowed algorithms', async () => {
    const [published] = issuer.publicJwks().keys;
    const keys = [
      { ...published, kid: 'good' },
      { ...published, kid: 'enc', use: 'enc' },
      { ...published, kid: 'sign-only', key_ops: ['sign'] },
      { ...published, kid: 'ps', alg: 'PS256' },
      { kty: 'oct', kid: 'hmac', k: 'c2VjcmV0' },
      { ...published, kid: 'broken', n: 'AQAB' },
      { kty: 'RSA', kid: 'no-modulus' },
      'not a key',
    ];
    const keySet = keySetWith(async () => Response.json({ keys }));
    expect(await keySet.refresh()).toBe(true);
    expect([...(keySet.usable()?.kids ?? [])]).toEqual(['good']);
  });

  it('refuses a set without usable keys and a declared oversize body', async () => {
    const empty = keySetWith(async () => Response.json({ keys: [] }));
    expect(await empty.refresh()).toBe(false);
    expect(empty.status().detail).toContain('no usable keys');

    const big = keySetWith(
      async () =>
        new Response('{"keys":[]}', { headers: { 'content-length': String(10 * 1024 * 1024) } }),
    );
    expect(await big.refresh()).toBe(false);
    expect(big.status().detail).toContain('response too large');
  });

  it('requests with redirects refused and a timeout signal', async () => {
    let seen: RequestInit | undefined;
    const keySet = keySetWith(async (_input, init) => {
      seen = init;
      return Response.json(issuer.publicJwks());
    });
    await keySet.refresh();
    // Not followed by fetch: a 3xx reaches the key set, which refuses it itself.
    expect(seen?.redirect).toBe('manual');
    expect(seen?.signal).toBeInstanceOf(AbortSignal);
    const redirected = keySetWith(
      async () =>
        new Response(null, { status: 307, headers: { location: 'https://evil.example' } }),
    );
    expect(await redirected.refresh()).toBe(false);
    expect(redirected.status().detail).toContain('redirect refused');
  });

  it('tells the refresh hook the outcome class of every fetch', async () => {
    const outcomes: string[] = [];
    const answers: Array<() => Response | Promise<Response>> = [
      () => Response.json(issuer.publicJwks()),
      () => new Response('not json'),
      () => new Response(null, { status: 500 }),
      () => new Response(null, { status: 302, headers: { location: 'https://elsewhere' } }),
      () => new Response('{"keys":[]}', { headers: { 'content-length': String(1 << 20) } }),
      () => Promise.reject(new TypeError('fetch failed')),
    ];
    const keySet = new IssuerKeySet({
      issuer: 'https://zuul.example.org',
      jwksUrl: 'https://zuul.example.org/oidc/jwks',
      algorithms: ['RS256'],
      timeoutMs: 1000,
      maxBytes: 65536,
      refreshIntervalSeconds: 300,
      maxStaleSeconds: 3600,
      minRefetchIntervalSeconds: 30,
      fetchImpl: async () => (answers.shift() ?? (() => Response.json({})))(),
      now: () => clock.now(),
      onRefresh: (outcome) => outcomes.push(outcome),
    });
    for (let i = 0; i < 6; i++) await keySet.refresh();
    expect(outcomes).toEqual([
      'ok',
      'invalid',
      'http_status',
      'redirect',
      'too_large',
      'unreachable',
    ]);
  });

  it('shares one fetch among concurrent refetches', async () => {
    let calls = 0;
    const keySet = keySetWith(async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return Response.json(issuer.publicJwks());
    });
    await Promise.all([keySet.refetch(), keySet.refetch(), keySet.refresh(), keySet.refetch()]);
    expect(calls).toBe(1);
  });

  it('background refresh timer is stoppable', () => {
    const keySet = keySetWith(async () => Response.json(issuer.publicJwks()));
    keySet.start();
    keySet.stop();
    keySet.stop();
  });
});
