/**
 * Tokens the broker must reject with `invalid_token`, built against a real issuer so each
 * differs from an acceptable token in one way only. The verifier under test trusts `issuer`
 * alone; `second` stands for an attacker's own, perfectly valid, key and issuer.
 */
import { createHmac } from 'node:crypto';
import type { ZuulIssuer } from '../../src/dev/zuul-issuer.js';

export interface BadToken {
  name: string;
  token: string;
}

function segment(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function parts(token: string): [string, string, string] {
  const [header = '', payload = '', signature = ''] = token.split('.');
  return [header, payload, signature];
}

export async function badTokens(
  issuer: ZuulIssuer,
  opts: { audience: string; second: ZuulIssuer },
): Promise<BadToken[]> {
  const { audience, second } = opts;
  const claims = (overrides: Record<string, unknown> = {}, omit: string[] = []) =>
    issuer.buildClaims({ aud: audience, ...overrides }, { omit });
  const nowSeconds = Number(claims().iat);
  const good = issuer.mint({ aud: audience });
  const [goodHeader, goodPayload, goodSignature] = parts(good);

  const unsigned = (header: Record<string, unknown>, signature = '') =>
    `${segment(header)}.${segment(claims())}.${signature}`;

  const hmacConfusion = (() => {
    const input = `${segment({ typ: 'JWT', alg: 'HS256', kid: issuer.kid })}.${segment(claims())}`;
    const mac = createHmac('sha256', issuer.publicKeyPem()).update(input).digest('base64url');
    return `${input}.${mac}`;
  })();

  const tampered = (() => {
    const [, otherPayload] = parts(issuer.mint({ aud: audience, tenant: 'other-tenant' }));
    return `${goodHeader}.${otherPayload}.${goodSignature}`;
  })();

  const attackerKey = second.publicJwks().keys[0];

  return [
    { name: 'alg none', token: unsigned({ typ: 'JWT', alg: 'none', kid: issuer.kid }) },
    { name: 'alg None', token: unsigned({ typ: 'JWT', alg: 'None', kid: issuer.kid }, 'AAAA') },
    { name: 'alg NONE', token: unsigned({ typ: 'JWT', alg: 'NONE', kid: issuer.kid }, 'AAAA') },
    { name: 'HS256 with the RSA public key as HMAC secret', token: hmacConfusion },
    { name: 'RS256 header without signature', token: `${goodHeader}.${goodPayload}.` },
    {
      name: 'alg RS512 not in the allow-list',
      token: issuer.mint({ aud: audience }, { header: { alg: 'RS512' } }),
    },
    {
      name: 'alg PS256 not in the allow-list',
      token: issuer.mint({ aud: audience }, { header: { alg: 'PS256' } }),
    },
    { name: 'wrong iss', token: issuer.sign(claims({ iss: 'https://zuul.evil.example' })) },
    { name: 'iss with trailing slash', token: issuer.sign(claims({ iss: `${issuer.issuer}/` })) },
    { name: 'missing iss', token: issuer.sign(claims({}, ['iss'])) },
    { name: 'wrong aud', token: issuer.sign(claims({ aud: 'https://other.example.org' })) },
    {
      name: 'aud array without the audience',
      token: issuer.sign(claims({ aud: ['https://a.example'] })),
    },
    { name: 'missing aud', token: issuer.sign(claims({}, ['aud'])) },
    { name: 'aud as number', token: issuer.sign(claims({ aud: 42 })) },
    {
      name: 'expired',
      token: issuer.sign(claims({ iat: nowSeconds - 1000, exp: nowSeconds - 100 })),
    },
    {
      name: 'iat in the future',
      token: issuer.sign(claims({ iat: nowSeconds + 3600, exp: nowSeconds + 4500 })),
    },
    { name: 'nbf in the future', token: issuer.sign(claims({ nbf: nowSeconds + 3600 })) },
    { name: 'no exp', token: issuer.sign(claims({}, ['exp'])) },
    { name: 'no iat', token: issuer.sign(claims({}, ['iat'])) },
    { name: 'lifetime too long', token: issuer.sign(claims({ exp: nowSeconds + 10801 })) },
    {
      name: 'exp before iat',
      token: issuer.sign(claims({ iat: nowSeconds, exp: nowSeconds - 1 })),
    },
    {
      name: 'too old',
      token: issuer.sign(claims({ iat: nowSeconds - 11000, exp: nowSeconds + 300 })),
    },
    { name: 'iat as string', token: issuer.sign(claims({ iat: String(nowSeconds) })) },
    { name: 'exp as float', token: issuer.sign(claims({ exp: nowSeconds + 900.5 })) },
    {
      name: 'build-uuid with dashes',
      token: issuer.sign(claims({ 'build-uuid': '5f1c0e6f-3b1a-4c7e-9d2b-8a6c4e0f1a2b' })),
    },
    {
      name: 'build-uuid uppercase',
      token: issuer.sign(claims({ 'build-uuid': '5F1C0E6F3B1A4C7E9D2B8A6C4E0F1A2B' })),
    },
    { name: 'tenant as number', token: issuer.sign(claims({ tenant: 42 })) },
    { name: 'job-name empty', token: issuer.sign(claims({ 'job-name': '' })) },
    { name: 'pipeline missing', token: issuer.sign(claims({}, ['pipeline'])) },
    { name: 'sub as array', token: issuer.sign(claims({ sub: ['secret:scs/a/b/c'] })) },
    {
      name: 'tenant mismatching sub',
      token: issuer.sign(
        claims({ tenant: 'other-tenant', sub: 'secret:scs/github.com/org/repo/x' }),
      ),
    },
    { name: 'sub without project', token: issuer.sign(claims({ sub: 'secret:scs/openbao-id' })) },
    {
      name: 'sub not a secret',
      token: issuer.sign(claims({ sub: 'project:scs/github.com/org/repo/x' })),
    },
    {
      name: 'sub with dot-dot segment',
      token: issuer.sign(claims({ sub: 'secret:scs/github.com/../repo/x' })),
    },
    {
      name: 'sub with empty segment',
      token: issuer.sign(claims({ sub: 'secret:scs/github.com//repo/x' })),
    },
    {
      name: 'sub with whitespace',
      token: issuer.sign(claims({ sub: 'secret:scs/github.com/org/re po/x' })),
    },
    { name: 'oversize (> 8 KiB)', token: issuer.sign(claims({ padding: 'x'.repeat(9000) })) },
    { name: 'unknown kid', token: issuer.sign(claims(), { kid: 'RS256-4711' }) },
    { name: 'missing kid', token: issuer.sign(claims(), { kid: undefined }) },
    { name: 'kid as number', token: issuer.sign(claims(), { kid: 0 }) },
    { name: 'typ not JWT', token: issuer.sign(claims(), { typ: 'at+jwt' }) },
    { name: 'tampered payload', token: tampered },
    {
      name: "second issuer's key claiming the first iss",
      token: second.mint({ aud: audience, iss: issuer.issuer }),
    },
    { name: 'second issuer (not configured)', token: second.mint({ aud: audience }) },
    { name: 'jwk header injection', token: second.sign(claims(), { jwk: attackerKey }) },
    { name: 'jku header injection', token: second.sign(claims(), { jku: second.jwksUrl }) },
    { name: 'x5u header', token: second.sign(claims(), { x5u: `${second.issuer}/cert.pem` }) },
    { name: 'crit header', token: issuer.sign(claims(), { crit: ['exp'] }) },
    { name: 'b64 false header', token: issuer.sign(claims(), { b64: false, crit: ['b64'] }) },
    { name: 'empty string', token: '' },
    { name: 'garbage', token: 'this is not a token' },
    { name: 'two parts', token: `${goodHeader}.${goodPayload}` },
    { name: 'four parts', token: `${good}.${goodSignature}` },
    { name: 'five parts (JWE shape)', token: `${goodHeader}.${goodPayload}.${goodSignature}.a.b` },
    { name: 'whitespace inside', token: `${goodHeader}.${goodPayload} .${goodSignature}` },
    { name: 'trailing newline', token: `${good}\n` },
    {
      name: 'header is not JSON',
      token: `${Buffer.from('nope').toString('base64url')}.${goodPayload}.${goodSignature}`,
    },
    { name: 'payload is a JSON array', token: `${goodHeader}.${segment([1, 2])}.${goodSignature}` },
  ];
}
