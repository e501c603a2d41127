import { afterAll, describe, expect, it } from 'vitest';
import { createRateLimiter } from '../../../src/http/rate-limit.js';
import { buildTestApp } from '../../support/app.js';
import { CLOUDS, TEST_POLICY } from '../../support/policies.js';

describe('rate limiter', () => {
  it('allows a burst, then refuses with the seconds to wait, and refills over time', () => {
    let now = 0;
    const limiter = createRateLimiter(
      { perIdentity: { rate: 1, burst: 2 }, global: { rate: 100, burst: 100 } },
      { now: () => now },
    );
    expect(limiter.take('a')).toEqual({ ok: true });
    expect(limiter.take('a')).toEqual({ ok: true });
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterSeconds: 1, scope: 'identity' });
    expect(limiter.take('b')).toEqual({ ok: true });
    now += 1000;
    expect(limiter.take('a')).toEqual({ ok: true });
  });

  it('applies the global bucket across identities', () => {
    const limiter = createRateLimiter(
      { perIdentity: { rate: 10, burst: 10 }, global: { rate: 0.5, burst: 2 } },
      { now: () => 0 },
    );
    expect(limiter.take('a').ok).toBe(true);
    expect(limiter.take('b').ok).toBe(true);
    expect(limiter.take('c')).toEqual({ ok: false, retryAfterSeconds: 2, scope: 'global' });
  });

  it('keeps memory bounded to the configured number of identities', () => {
    const limiter = createRateLimiter(
      { perIdentity: { rate: 0.001, burst: 1 }, global: { rate: 1e6, burst: 1e6 } },
      { now: () => 0, maxIdentities: 2 },
    );
    limiter.take('a');
    limiter.take('b');
    limiter.take('c'); // evicts a: it starts full again
    expect(limiter.take('a').ok).toBe(true);
    expect(limiter.take('c').ok).toBe(false);
  });
});

describe('429 on the job routes', () => {
  let close: (() => Promise<void>) | undefined;
  afterAll(async () => close?.());

  it('answers 429 with Retry-After for one identity while another is served; invalid tokens use no budget', async () => {
    const t = await buildTestApp(TEST_POLICY, {
      rateLimiter: createRateLimiter({
        perIdentity: { rate: 0.01, burst: 2 },
        global: { rate: 1000, burst: 1000 },
      }),
    });
    close = t.close;
    t.openbao.put('secret', 'zuul/scs/standards/clouds', CLOUDS);
    const get = (token: string) =>
      t.app.request('/v1/secrets/compliance-clouds', {
        headers: { authorization: `Bearer ${token}` },
      });
    for (let i = 0; i < 5; i++) expect((await get(`${t.issuer.mint()}x`)).status).toBe(401);
    expect((await get(t.issuer.mint())).status).toBe(200);
    expect((await get(t.issuer.mint())).status).toBe(200);
    const limited = await get(t.issuer.mint());
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await limited.json()).toMatchObject({ code: 'rate_limited' });
    const other = t.issuer.mint({}, { project: 'github.com/SovereignCloudStack/other' });
    expect(
      (await t.app.request('/v1/whoami', { headers: { authorization: `Bearer ${other}` } })).status,
    ).toBe(200);
  });
});
