/** An issuer whose key set cannot be had (and no cache) is 503 unavailable, not 401. */
import { afterAll, beforeAll, expect, it } from 'vitest';
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

let issuer: ZuulIssuer;
beforeAll(async () => {
  issuer = await ZuulIssuer.start({ modulusLength: 2048 });
  issuer.setMode('down');
});
afterAll(async () => issuer.close());

it('answers 503 with Retry-After when the issuer keys are unavailable, and calls no OpenBao', async () => {
  const logger = createLogger('debug', new LogCapture());
  const verifier = createTokenVerifier(
    [IssuerConfigSchema.parse({ issuer: issuer.issuer, audience: AUDIENCE })],
    { maxTokenBytes: 8192, logger },
  );
  const openbao = new FakeOpenBao();
  const app = createApp({
    verifier,
    policies: staticPolicySource(policySetFrom(TEST_POLICY)),
    openbao,
    logger,
    metrics: createHttpMetrics(),
    limits: { maxBodyBytes: 16384, maxTokenBytes: 8192 },
    wrapTtlSeconds: 60,
  });
  try {
    const res = await app.request('/v1/secrets/compliance-clouds', {
      headers: { authorization: `Bearer ${issuer.mint()}` },
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await res.json()).toMatchObject({ code: 'unavailable' });
    expect(openbao.calls).toEqual([]);
    const ready = await app.request('/readyz');
    expect(ready.status).toBe(503);
    expect(
      ((await ready.json()) as { checks: { issuers: { status: string } } }).checks.issuers.status,
    ).toBe('failing');
  } finally {
    verifier.close();
  }
});
