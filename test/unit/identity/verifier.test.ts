import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ZuulTokenVerifier } from '../../../src/identity/verifier.js';
import { createTokenVerifier } from '../../../src/identity/verifier.js';
import { badTokens } from '../../support/bad-tokens.js';
import {
  type FakeClock,
  fakeClock,
  issuerConfigFor,
  startZuulIssuer,
  ZUUL_EPOCH_SECONDS,
  ZuulIssuer,
} from '../../support/zuul.js';

const AUDIENCE = 'https://secrets.example.org';
const MAX_TOKEN_BYTES = 8192;

let issuer: ZuulIssuer;
let second: ZuulIssuer;
let clock: FakeClock;
const verifiers: ZuulTokenVerifier[] = [];

function verifierFor(
  issuers: ZuulIssuer[],
  extra: { logger?: { warn(obj: object, msg: string): void }; fetchImpl?: typeof fetch } = {},
  overrides: Parameters<typeof issuerConfigFor>[1] = {},
): ZuulTokenVerifier {
  const verifier = createTokenVerifier(
    issuers.map((one) => issuerConfigFor(one, overrides)),
    { maxTokenBytes: MAX_TOKEN_BYTES, now: () => clock.now(), ...extra },
  );
  verifiers.push(verifier);
  return verifier;
}

beforeAll(async () => {
  clock = fakeClock();
  [issuer, second] = await Promise.all([
    startZuulIssuer({ now: () => clock.now() }),
    startZuulIssuer({ now: () => clock.now() }),
  ]);
});

beforeEach(() => {
  clock = fakeClock();
});

afterEach(() => {
  for (const verifier of verifiers.splice(0)) verifier.close();
});

afterAll(async () => {
  await Promise.all([issuer.close(), second.close()]);
});

describe('a valid Zuul token', () => {
  it('becomes exactly the JobIdentity of its claims', async () => {
    const verifier = verifierFor([issuer]);
    const token = issuer.mint({ 'build-uuid': '5f1c0e6f3b1a4c7e9d2b8a6c4e0f1a2b' });
    expect(await verifier.verify(token)).toEqual({
      ok: true,
      identity: {
        issuer: issuer.issuer,
        tenant: 'scs',
        project: 'github.com/SovereignCloudStack/standards',
        secret: 'openbao-id',
        build: '5f1c0e6f3b1a4c7e9d2b8a6c4e0f1a2b',
        job: 'scs-compliance-check',
        pipeline: 'periodic-daily',
        playbook: 'github.com/SovereignCloudStack/standards/playbooks/compliance.yaml',
        issuedAt: new Date(ZUUL_EPOCH_SECONDS * 1000),
        expiresAt: new Date((ZUUL_EPOCH_SECONDS + 900) * 1000),
      },
    });
  });

  it('may carry custom claims, an audience list and the longest lifetime', async () => {
    const verifier = verifierFor([issuer]);
    const token = issuer.mint(
      { aud: ['https://other.example', AUDIENCE], trusted: true, branch: 'main' },
      { ttlSeconds: 10800, project: 'opendev.org/zuul/zuul-jobs', secretName: 'deploy' },
    );
    const result = await verifier.verify(token);
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.identity.project).toBe('opendev.org/zuul/zuul-jobs');
      expect(result.identity.secret).toBe('deploy');
      expect(result.identity).not.toHaveProperty('trusted');
    }
  });

  it('is accepted within the clock tolerance', async () => {
    const verifier = verifierFor([issuer]);
    const nowSeconds = ZUUL_EPOCH_SECONDS;
    const early = issuer.mint({}, { iat: nowSeconds + 50 });
    const late = issuer.mint({ iat: nowSeconds - 950, exp: nowSeconds - 50 });
    expect((await verifier.verify(early)).ok).toBe(true);
    expect((await verifier.verify(late)).ok).toBe(true);
  });

  it('from each of several issuers verifies against its own keys', async () => {
    const verifier = verifierFor([issuer, second]);
    const fromFirst = await verifier.verify(issuer.mint());
    const fromSecond = await verifier.verify(second.mint());
    expect(fromFirst.ok && fromFirst.identity.issuer).toBe(issuer.issuer);
    expect(fromSecond.ok && fromSecond.identity.issuer).toBe(second.issuer);
    // Both use kid RS256-0: the keys must not be mixed up.
    const forged = await verifier.verify(second.mint({ iss: issuer.issuer }));
    expect(forged).toEqual({
      ok: false,
      failure: { kind: 'invalid_token', reason: 'bad signature' },
    });
    expect(verifier.status().map((s) => s.issuer)).toEqual([issuer.issuer, second.issuer]);
  });
});

describe('bad tokens', () => {
  it('are each rejected with invalid_token and a value-free reason', async () => {
    const verifier = verifierFor([issuer]);
    await verifier.refreshKeySets();
    const table = await badTokens(issuer, { audience: AUDIENCE, second });
    expect(table.length).toBeGreaterThanOrEqual(40);
    const outcomes: Record<string, string> = {};
    for (const { name, token } of table) {
      const result = await verifier.verify(token);
      expect(result, name).toMatchObject({ ok: false, failure: { kind: 'invalid_token' } });
      if (!result.ok) {
        outcomes[name] = result.failure.reason;
        expect(result.failure.reason, name).toMatch(/^[a-z0-9 -]+$/);
        for (const part of token.split('.').filter((p) => p.length >= 8)) {
          expect(result.failure.reason, name).not.toContain(part);
        }
      }
    }
    expect(outcomes).toMatchObject({
      'alg none': 'malformed token',
      'alg None': 'algorithm not allowed',
      'HS256 with the RSA public key as HMAC secret': 'algorithm not allowed',
      'alg RS512 not in the allow-list': 'algorithm not allowed',
      'wrong iss': 'unknown issuer',
      'missing iss': 'missing iss',
      'wrong aud': 'wrong audience',
      'missing aud': 'missing aud',
      'aud as number': 'wrong audience',
      expired: 'token expired',
      'iat in the future': 'iat in the future',
      'nbf in the future': 'token not yet valid',
      'no exp': 'missing exp',
      'no iat': 'missing iat',
      'lifetime too long': 'lifetime too long',
      'exp before iat': 'invalid lifetime',
      'iat as string': 'invalid iat',
      'build-uuid with dashes': 'invalid build-uuid',
      'tenant as number': 'invalid tenant',
      'tenant mismatching sub': 'tenant mismatch',
      'oversize (> 8 KiB)': 'token too large',
      'unknown kid': 'unknown kid',
      'tampered payload': 'bad signature',
      "second issuer's key claiming the first iss": 'bad signature',
      'second issuer (not configured)': 'unknown issuer',
      'jwk header injection': 'forbidden header parameter',
      'jku header injection': 'forbidden header parameter',
      'empty string': 'empty token',
    });
  });

  it('a token older than maxAgeSeconds is refused even if not expired', async () => {
    const verifier = verifierFor([issuer], {}, { maxAgeSeconds: 600 });
    const token = issuer.mint({}, { iat: ZUUL_EPOCH_SECONDS - 700, ttlSeconds: 900 });
    expect(await verifier.verify(token)).toEqual({
      ok: false,
      failure: { kind: 'invalid_token', reason: 'token too old' },
    });
  });

  it('a token for an unknown issuer costs no network', async () => {
    let fetches = 0;
    const countingFetch: typeof fetch = (input, init) => {
      fetches += 1;
      return fetch(input, init);
    };
    const verifier = verifierFor([issuer], { fetchImpl: countingFetch });
    await verifier.refreshKeySets();
    const before = fetches;
    for (let i = 0; i < 5; i += 1) {
      await verifier.verify(second.mint({ iss: `https://zuul-${i}.example.org` }));
    }
    expect(fetches).toBe(before);
  });

  it('a token over the byte cap is refused before decoding', async () => {
    const verifier = verifierFor([issuer]);
    // Not even a JWS: the size check must come first.
    const result = await verifier.verify('é'.repeat(4097));
    expect(result).toEqual({
      ok: false,
      failure: { kind: 'invalid_token', reason: 'token too large' },
    });
  });
});

describe('canary: tokens never leak', () => {
  it('through reasons, status, logs or thrown errors', async () => {
    const canary = 'CANARY-7f3a9c';
    const logged: string[] = [];
    const logger = {
      warn: (obj: object, msg: string) => {
        logged.push(JSON.stringify(obj), msg);
      },
    };
    // An issuer whose key set endpoint answers with, and fails with, canary-bearing text.
    let call = 0;
    const leakyFetch: typeof fetch = async (input, init) => {
      call += 1;
      if (call === 1) return fetch(input, init);
      if (call % 2 === 0) throw new Error(`boom ${canary} ${String(input)}`);
      return new Response(`{"keys": "${canary}"}`, { status: 200 });
    };
    const verifier = verifierFor([issuer], { logger, fetchImpl: leakyFetch });
    await verifier.refreshKeySets();
    const tokens = [
      issuer.mint({ note: canary }),
      issuer.mint({ note: canary }, { header: { kid: `RS256-${canary}` } }),
      issuer.mint({ aud: canary }),
      issuer.mint({ tenant: canary }),
      issuer.mint({ sub: `secret:${canary}/ /x` }),
      issuer.mint({ 'build-uuid': canary }),
      issuer.mint({ iss: `https://${canary}.example` }),
      `${canary}.${canary}.${canary}`,
      canary,
    ];
    const reasons: string[] = [];
    for (const token of tokens) {
      clock.advance(60);
      await verifier.refreshKeySets();
      const result = await verifier.verify(token);
      if (!result.ok) reasons.push(result.failure.reason);
    }
    expect(logged.length).toBeGreaterThan(0);
    const everything = [...reasons, ...logged, JSON.stringify(verifier.status())].join('\n');
    expect(everything).not.toContain(canary);
    for (const token of tokens) expect(everything).not.toContain(token);
  });
});

describe('the dev issuer as zsb dev uses it', () => {
  it("serves discovery and Zuul-shaped keys on zuul-web's routes", async () => {
    const discovery = await (
      await fetch(`${issuer.issuer}/.well-known/openid-configuration`)
    ).json();
    expect(discovery).toMatchObject({
      issuer: issuer.issuer,
      jwks_uri: `${issuer.issuer}/oidc/jwks`,
    });
    expect(issuer.jwksUrl).toBe(`${issuer.issuer}/oidc/jwks`);
    // zuul-web has no discovery document under /oidc.
    expect((await fetch(`${issuer.issuer}/oidc/.well-known/openid-configuration`)).status).toBe(
      404,
    );
    const jwks: unknown = await (await fetch(issuer.jwksUrl)).json();
    expect(jwks).toEqual({
      keys: [
        {
          kty: 'RSA',
          n: expect.any(String),
          e: 'AQAB',
          alg: 'RS256',
          use: 'sig',
          kid: issuer.kid,
          key_ops: ['verify'],
        },
      ],
    });
  });

  it('mints in another process from the 0600 signing key file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zsb-issuer-'));
    try {
      const file = join(dir, 'signing-key.json');
      await issuer.writeSigningKeyFile(file);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const minter = await ZuulIssuer.fromSigningKeyFile(file, { now: () => clock.now() });
      expect(minter.issuer).toBe(issuer.issuer);
      const verifier = verifierFor([issuer]);
      expect((await verifier.verify(minter.mint())).ok).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the verified-token cache', () => {
  it('checks time again on every hit: a cached token still expires', async () => {
    const verifier = verifierFor([issuer]);
    const token = issuer.mint({}, { ttlSeconds: 600 });
    expect((await verifier.verify(token)).ok).toBe(true);
    expect((await verifier.verify(token)).ok).toBe(true);
    clock.advance(600 + 61);
    expect(await verifier.verify(token)).toEqual({
      ok: false,
      failure: { kind: 'invalid_token', reason: 'token expired' },
    });
  });

  it('verifies again after the key set changed: a token of a deleted key is refused', async () => {
    const own = await startZuulIssuer({ now: () => clock.now() });
    try {
      const verifier = verifierFor([own]);
      const token = own.mint();
      expect((await verifier.verify(token)).ok).toBe(true);
      // zuul-admin delete-oidc-signing-keys: same kid, new key; old tokens must fail.
      await own.resetKeys();
      await verifier.refreshKeySets();
      expect(await verifier.verify(token)).toEqual({
        ok: false,
        failure: { kind: 'invalid_token', reason: 'bad signature' },
      });
      expect((await verifier.verify(own.mint())).ok).toBe(true);
    } finally {
      await own.close();
    }
  });

  it('never lets a different token ride on a cached one', async () => {
    const verifier = verifierFor([issuer]);
    const token = issuer.mint();
    expect((await verifier.verify(token)).ok).toBe(true);
    const [h, p, sig = ''] = token.split('.');
    const flipped = `${h}.${p}.${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BA' : 'AA'}`;
    expect((await verifier.verify(flipped)).ok).toBe(false);
  });
});

describe('the forged-token cache', () => {
  it('refuses a repeated forged token again, and rechecks it against a new key set', async () => {
    const own = await startZuulIssuer({ now: () => clock.now() });
    try {
      const verifier = verifierFor([own]);
      const [h, p] = own.mint().split('.');
      const forged = `${h}.${p}.${Buffer.alloc(256, 7).toString('base64url')}`;
      const refused = { ok: false, failure: { kind: 'invalid_token', reason: 'bad signature' } };
      expect(await verifier.verify(forged)).toEqual(refused);
      expect(await verifier.verify(forged)).toEqual(refused);
      await own.resetKeys();
      await verifier.refreshKeySets();
      expect(await verifier.verify(forged)).toEqual(refused);
      // Valid tokens of the same issuer are unaffected.
      expect((await verifier.verify(own.mint())).ok).toBe(true);
    } finally {
      await own.close();
    }
  });
});
