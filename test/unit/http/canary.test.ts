/**
 * Canary: a unique secret value and a unique token travel through every success and error
 * path; neither may appear in any log line, nor in any error body.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { OpenBaoErrorKind } from '../../../src/openbao/errors.js';
import { buildTestApp } from '../../support/app.js';
import { TEST_POLICY } from '../../support/policies.js';

const CANARY_VALUE = `canary-value-${randomBytes(12).toString('hex')}`;
const CANARY_KEY_VALUE = `canary-key-${randomBytes(12).toString('hex')}`;

let t: Awaited<ReturnType<typeof buildTestApp>>;
beforeAll(async () => {
  t = await buildTestApp(TEST_POLICY);
});
afterAll(async () => t.close());

it('never writes a secret value, a token or a wrapping token to the log or an error body', async () => {
  const tokens: string[] = [];
  const errorBodies: string[] = [];
  const wrapTokens: string[] = [];
  const reset = () => {
    t.openbao.entries.clear();
    t.openbao.failures.clear();
    t.openbao.put('secret', 'zuul/scs/standards/clouds', { password: CANARY_VALUE }, 3);
    t.openbao.put('secret', 'zuul/scs/github.com/SovereignCloudStack/standards/deploy', {
      private_key: CANARY_KEY_VALUE,
    });
    t.openbao.put('secret', 'zuul/scs/wrapped', { w: CANARY_VALUE });
  };
  const call = async (path: string, init: RequestInit & { token?: string; expect: number }) => {
    const token = init.token ?? t.issuer.mint();
    tokens.push(token);
    const res = await t.app.request(path, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    const text = await res.text();
    expect(res.status, `${path} ${init.body ?? ''}`).toBe(init.expect);
    if (res.status >= 400) errorBodies.push(text);
    for (const m of text.matchAll(/"token":"([^"]+)"/g)) if (m[1]) wrapTokens.push(m[1]);
    return text;
  };

  reset();
  // Successes.
  expect(
    await call('/v1/fetch', {
      method: 'POST',
      body: '{"secrets":["compliance-clouds","project-deploy-key"]}',
      expect: 200,
    }),
  ).toContain(CANARY_VALUE);
  await call('/v1/secrets/compliance-clouds', { expect: 200 });
  await call('/v1/fetch', {
    method: 'POST',
    body: '{"secrets":["wrapped-only"],"wrap":true}',
    expect: 200,
  });
  await call('/v1/whoami', { expect: 200 });
  // Denials and bad requests.
  await call('/v1/fetch', { method: 'POST', body: '{"secrets":["someone-elses"]}', expect: 403 });
  await call('/v1/fetch', { method: 'POST', body: '{"secrets":["wrapped-only"]}', expect: 403 });
  await call('/v1/fetch', { method: 'POST', body: `{"secrets":["${CANARY_VALUE}"]}`, expect: 403 });
  await call('/v1/fetch', {
    method: 'POST',
    body: `{"secrets":["compliance-clouds"],"${CANARY_VALUE}":1}`,
    expect: 400,
  });
  await call('/v1/fetch', { method: 'POST', body: `{"secrets": [${CANARY_VALUE}`, expect: 400 });
  // Bad tokens, among them one carrying the canary in a claim.
  const expired = t.issuer.mint(
    { note: CANARY_VALUE },
    { iat: Math.floor(Date.now() / 1000) - 7200, ttlSeconds: 600 },
  );
  await call('/v1/fetch', {
    method: 'POST',
    body: '{"secrets":["compliance-clouds"]}',
    token: expired,
    expect: 401,
  });
  await call('/v1/whoami', { token: `${t.issuer.mint()}x`, expect: 401 });
  // Upstream failures after a partial success.
  for (const kind of [
    'timeout',
    'unavailable',
    'permission_denied',
    'upstream',
  ] as OpenBaoErrorKind[]) {
    reset();
    t.openbao.failures.set('secret/zuul/scs/github.com/SovereignCloudStack/standards/deploy', kind);
    const status =
      { timeout: 504, unavailable: 503, permission_denied: 502, upstream: 502 }[kind as string] ??
      0;
    await call('/v1/fetch', {
      method: 'POST',
      body: '{"secrets":["compliance-clouds","project-deploy-key"]}',
      expect: status,
    });
  }

  const logText = t.logs.text();
  expect(t.logs.lines.length).toBeGreaterThan(10);
  const forbidden = [CANARY_VALUE, CANARY_KEY_VALUE, ...tokens, ...wrapTokens];
  expect(wrapTokens.length).toBeGreaterThan(0);
  for (const needle of forbidden) {
    const at = logText.indexOf(needle);
    expect(
      at === -1 ? '' : logText.slice(Math.max(0, at - 300), at + 40),
      'log leaks a canary',
    ).toBe('');
    for (const body of errorBodies)
      expect(body.includes(needle), 'error body leaks a canary').toBe(false);
  }
  // Each token's signature part alone must not leak either.
  for (const token of tokens) {
    const signature = token.split('.')[2] ?? '';
    if (signature.length > 16) expect(logText.includes(signature)).toBe(false);
  }
  // The log is still useful: one line per request with identity and names.
  const requestLines = t.logs.entries().filter((e) => e.msg === 'request');
  expect(requestLines.length).toBeGreaterThanOrEqual(14);
  expect(requestLines[0]).toMatchObject({
    route: '/v1/fetch',
    status: 200,
    secrets: ['compliance-clouds', 'project-deploy-key'],
  });
  expect(requestLines[0]?.identity).toMatchObject({ tenant: 'scs', job: 'scs-compliance-check' });
});
