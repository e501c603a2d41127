/**
 * Security cases shared by every protected route: every bad token and every malformed
 * Authorization header is a 401 with no OpenBao call, and never reveals which check failed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZuulIssuer } from '../../../src/dev/zuul-issuer.js';
import { AUDIENCE, buildTestApp } from '../../support/app.js';
import { type BadToken, badTokens } from '../../support/bad-tokens.js';
import { expectGeneric401 } from '../../support/http.js';
import { CLOUDS, TEST_POLICY } from '../../support/policies.js';

let t: Awaited<ReturnType<typeof buildTestApp>>;
let second: ZuulIssuer;
let table: BadToken[];

const ROUTES = [
  { method: 'POST', path: '/v1/fetch', body: '{"secrets":["compliance-clouds"]}' },
  { method: 'GET', path: '/v1/secrets/compliance-clouds' },
  { method: 'GET', path: '/v1/whoami' },
] as const;

beforeAll(async () => {
  t = await buildTestApp(TEST_POLICY);
  second = await ZuulIssuer.start({ modulusLength: 2048 });
  t.openbao.put('secret', 'zuul/scs/standards/clouds', CLOUDS);
  table = await badTokens(t.issuer, { audience: AUDIENCE, second });
});
afterAll(async () => {
  await t.close();
  await second.close();
});

function send(route: (typeof ROUTES)[number], authorization: string | undefined) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (authorization !== undefined) headers.authorization = authorization;
  return t.app.request(route.path, {
    method: route.method,
    headers,
    ...('body' in route ? { body: route.body } : {}),
  });
}

describe.each(ROUTES)('$method $path', (route) => {
  it('has a bad-token table covering the cases of the issue', () => {
    expect(table.length).toBeGreaterThanOrEqual(25);
  });

  it('answers every bad token 401 with the same body and no OpenBao call', async () => {
    // HTTP trims header values, so whitespace around a token cannot reach the broker.
    for (const bad of table.filter((b) => b.token.trim() === b.token)) {
      t.openbao.calls.length = 0;
      const res = await send(route, `Bearer ${bad.token}`);
      if (res.status !== 401) throw new Error(`bad token '${bad.name}' got ${res.status}`);
      await expectGeneric401(res);
      expect(t.openbao.calls, bad.name).toEqual([]);
    }
  });

  it.each([
    ['missing header', undefined],
    ['empty', ''],
    ['scheme only', 'Bearer'],
    ['two spaces', `Bearer  ${'x'.repeat(10)}`],
    ['basic scheme', 'Basic dXNlcjpwYXNz'],
    ['token with spaces', 'Bearer a.b c.d'],
    ['trailing text', 'Bearer a.b.c extra'],
    ['oversize header', `Bearer ${'a'.repeat(9000)}`],
  ])('rejects %s with 401', async (_name, header) => {
    t.openbao.calls.length = 0;
    await expectGeneric401(await send(route, header));
    expect(t.openbao.calls).toEqual([]);
  });
});

it('accepts a valid token (the table is not rejecting everything)', async () => {
  const res = await send(ROUTES[0], `Bearer ${t.issuer.mint()}`);
  expect(res.status).toBe(200);
});
