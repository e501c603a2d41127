import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { OpenBaoErrorKind } from '../../../src/openbao/errors.js';
import { buildTestApp } from '../../support/app.js';
import { CLOUDS, TEST_POLICY } from '../../support/policies.js';

let t: Awaited<ReturnType<typeof buildTestApp>>;

beforeAll(async () => {
  t = await buildTestApp(TEST_POLICY);
});
beforeEach(() => {
  t.openbao.entries.clear();
  t.openbao.failures.clear();
  t.openbao.calls.length = 0;
  t.openbao.revokedAccessors.length = 0;
  t.openbao.put('secret', 'zuul/scs/standards/clouds', CLOUDS, 7);
  t.openbao.put('secret', 'zuul/scs/wrapped', { w: 'x' });
  t.openbao.put('secret', 'zuul/scs/plain', { p: 'y' });
});
afterAll(async () => t.close());

function post(
  body: string,
  token = t.issuer.mint(),
  /** null: no Content-Type header at all. */
  contentType: string | null = 'application/json',
  route = '/v1/fetch',
) {
  return t.app.request(route, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      ...(contentType === null ? {} : { 'content-type': contentType }),
    },
    // A Blob: a string body would make the Request add `text/plain;charset=UTF-8` itself.
    body: new Blob([body]),
  });
}

async function expectProblem(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ status, code, type: 'about:blank' });
  expect(typeof body.requestId).toBe('string');
  expect(res.headers.get('x-request-id')).toBe(body.requestId);
  return body;
}

describe('forbidden', () => {
  it('answers an ungranted name and an unknown name with the same 403, before any OpenBao call', async () => {
    const ungranted = await expectProblem(
      await post('{"secrets":["someone-elses"]}'),
      403,
      'forbidden',
    );
    const unknown = await expectProblem(
      await post('{"secrets":["no-such-secret"]}'),
      403,
      'forbidden',
    );
    const { requestId: _a, ...a } = ungranted;
    const { requestId: _b, ...b } = unknown;
    expect(a).toEqual(b);
    expect(t.openbao.calls).toEqual([]);
  });

  it('is all or nothing: one ungranted name denies the whole request without reading', async () => {
    await expectProblem(
      await post('{"secrets":["compliance-clouds","someone-elses"]}'),
      403,
      'forbidden',
    );
    expect(t.openbao.calls).toEqual([]);
  });

  it('denies a granted job in another pipeline', async () => {
    await expectProblem(
      await post('{"secrets":["compliance-clouds"]}', t.issuer.mint({ pipeline: 'check' })),
      403,
      'forbidden',
    );
  });

  it('refuses unwrapped delivery when every grant requires wrapping, and wrapped when the grant says never', async () => {
    await expectProblem(await post('{"secrets":["wrapped-only"]}'), 403, 'forbidden');
    await expectProblem(await post('{"secrets":["never-wrapped"],"wrap":true}'), 403, 'forbidden');
    expect(t.openbao.calls).toEqual([]);
    const ok = await post('{"secrets":["wrapped-only"],"wrap":true}');
    expect(ok.status).toBe(200);
  });

  it('refuses a placeholder path that would leave its mount', async () => {
    const token = t.issuer.mint({}, { project: 'github.com/../standards' });
    // The identity verifier already refuses such a sub; either way nothing is read.
    const res = await post('{"secrets":["project-deploy-key"]}', token);
    expect([401, 403]).toContain(res.status);
    expect(t.openbao.calls).toEqual([]);
  });
});

describe('invalid requests', () => {
  it.each([
    ['malformed JSON', '{"secrets": ['],
    ['not an object', '["compliance-clouds"]'],
    ['unknown field', '{"secrets":["compliance-clouds"],"ttl":5}'],
    ['prototype key', '{"secrets":["compliance-clouds"],"__proto__":{"admin":true}}'],
    ['empty list', '{"secrets":[]}'],
    ['duplicate names', '{"secrets":["compliance-clouds","compliance-clouds"]}'],
    ['too many names', JSON.stringify({ secrets: Array.from({ length: 33 }, (_, i) => `s${i}`) })],
    ['bad name', '{"secrets":["../etc"]}'],
    ['wrap not boolean', '{"secrets":["compliance-clouds"],"wrap":"yes"}'],
  ])('%s → 400', async (_name, body) => {
    await expectProblem(await post(body), 400, 'invalid_request');
    expect(t.openbao.calls).toEqual([]);
  });

  it.each([
    ['the same key twice', '{"secrets":["someone-elses"],"secrets":["compliance-clouds"]}'],
    [
      'a key repeated in another spelling',
      '{"secrets":["x"],"secr\\u0065ts":["compliance-clouds"]}',
    ],
    ['wrap twice', '{"secrets":["compliance-clouds"],"wrap":true,"wrap":false}'],
    [
      'a duplicate deeper down',
      '{"secrets":["compliance-clouds"],"x":[{"a":1,"b":{"c":1,"c":2}}]}',
    ],
  ])('refuses a body with %s (400), whichever value JSON.parse would keep', async (_n, body) => {
    const problem = await expectProblem(await post(body), 400, 'invalid_request');
    expect(problem.detail).toMatch(/duplicate/);
    expect(t.openbao.calls).toEqual([]);
  });

  it('accepts the same key in different objects', async () => {
    const ok = await post('{"secrets":["compliance-clouds"]}');
    expect(ok.status).toBe(200);
  });

  it.each([
    ['text/plain', 'text/plain'],
    ['text/plain with charset', 'text/plain;charset=UTF-8'],
    ['form encoding (curl -d)', 'application/x-www-form-urlencoded'],
    ['no content type', null],
    ['another charset', 'application/json; charset=latin1'],
    ['another JSON type', 'application/problem+json'],
    ['a look-alike', 'application/jsonp'],
    ['an unknown parameter', 'application/json; version=2'],
  ])('refuses a fetch body sent as %s with 415', async (_name, contentType) => {
    const res = await post('{"secrets":["compliance-clouds"]}', t.issuer.mint(), contentType);
    const problem = await expectProblem(res, 415, 'unsupported_media_type');
    expect(problem.title).toBe('Unsupported media type');
    expect(t.openbao.calls).toEqual([]);
  });

  it.each([
    'application/json',
    'application/json; charset=utf-8',
    'Application/JSON;Charset="UTF-8"',
  ])('accepts a fetch body sent as %s', async (contentType) => {
    const res = await post('{"secrets":["compliance-clouds"]}', t.issuer.mint(), contentType);
    expect(res.status).toBe(200);
  });

  it('checks the token before the media type', async () => {
    const res = await post('{"secrets":["compliance-clouds"]}', 'junk', 'text/plain');
    await expectProblem(res, 401, 'unauthenticated');
  });

  it('takes POST /v1/revoke without a body whatever its type, and {} only as JSON', async () => {
    expect((await post('', t.issuer.mint(), null, '/v1/revoke')).status).toBe(200);
    expect((await post('', t.issuer.mint(), 'text/plain', '/v1/revoke')).status).toBe(200);
    expect((await post('{}', t.issuer.mint(), 'application/json', '/v1/revoke')).status).toBe(200);
    await expectProblem(
      await post('{}', t.issuer.mint(), 'text/plain', '/v1/revoke'),
      415,
      'unsupported_media_type',
    );
  });

  it('rejects a body over the limit with 413', async () => {
    await expectProblem(
      await post(JSON.stringify({ secrets: ['x'], pad: 'p'.repeat(20000) })),
      413,
      'payload_too_large',
    );
  });

  it('rejects unknown query parameters on GET /v1/secrets/{name}', async () => {
    const res = await t.app.request('/v1/secrets/compliance-clouds?version=2', {
      headers: { authorization: `Bearer ${t.issuer.mint()}` },
    });
    await expectProblem(res, 400, 'invalid_request');
  });

  it('answers unknown routes 404 and wrong methods 405 with Allow', async () => {
    await expectProblem(await t.app.request('/v1/nope'), 404, 'not_found');
    const res = await t.app.request('/v1/fetch', { method: 'GET' });
    await expectProblem(res, 405, 'method_not_allowed');
    expect(res.headers.get('allow')).toBe('POST');
  });
});

describe('OpenBao failures', () => {
  it.each<[OpenBaoErrorKind, number, string]>([
    ['timeout', 504, 'upstream_timeout'],
    ['unavailable', 503, 'unavailable'],
    ['sealed', 503, 'unavailable'],
    ['permission_denied', 502, 'upstream_error'],
    ['upstream', 502, 'upstream_error'],
  ])('%s → %i %s, without upstream text', async (kind, status, code) => {
    t.openbao.failures.set('secret/zuul/scs/standards/clouds', kind);
    const res = await post('{"secrets":["compliance-clouds"]}');
    if (status === 503) expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    const body = await expectProblem(res, status, code);
    expect(JSON.stringify(body)).not.toContain('zuul/scs');
  });

  it('a granted secret missing in OpenBao is 502', async () => {
    t.openbao.entries.clear();
    await expectProblem(await post('{"secrets":["compliance-clouds"]}'), 502, 'upstream_error');
  });

  it('revokes wrapping tokens already minted when a later read fails', async () => {
    t.openbao.failures.set('secret/zuul/scs/wrapped', 'timeout');
    await expectProblem(
      await post('{"secrets":["compliance-clouds","wrapped-only"],"wrap":true}'),
      504,
      'upstream_timeout',
    );
    expect(t.openbao.revokedAccessors).toHaveLength(1);
    expect(t.openbao.revokedAccessors[0]).toMatch(/^wrap-accessor-/);
  });
});
