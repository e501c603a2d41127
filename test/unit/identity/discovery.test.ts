/**
 * Key sets the way zuul-web serves them (ADR 0010): without a configured `jwksUrl` the broker
 * finds the key set by OpenID discovery at the root, so it keeps working when Zuul drops the
 * backwards-compat routes; and a URL that answers something other than a key set (zuul-web
 * answers unknown paths with 200 and HTML) is named, with what came back, in the status.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { shownBytes, shownUrl } from '../../../src/identity/issuer-document.js';
import { IssuerKeySet } from '../../../src/identity/keyset.js';
import type { ZuulTokenVerifier } from '../../../src/identity/verifier.js';
import { createTokenVerifier } from '../../../src/identity/verifier.js';
import {
  fakeClock,
  issuerConfigFor,
  startZuulIssuer,
  type ZuulIssuer,
} from '../../support/zuul.js';

const clock = fakeClock();
/** A zuul-web after Zuul 15: no compat routes, the dashboard for every unknown path. */
let zuul15: ZuulIssuer;
const verifiers: ZuulTokenVerifier[] = [];

beforeAll(async () => {
  zuul15 = await startZuulIssuer({
    now: () => clock.now(),
    compatRoutes: false,
    dashboardForUnknownPaths: true,
  });
});
afterEach(() => {
  for (const v of verifiers.splice(0)) v.close();
  zuul15.setMode('ok');
  zuul15.setDiscoveryMode('ok');
});
afterAll(async () => {
  await zuul15.close();
});

function verifierFor(overrides: Parameters<typeof issuerConfigFor>[1] = {}): ZuulTokenVerifier {
  const verifier = createTokenVerifier([issuerConfigFor(zuul15, overrides)], {
    maxTokenBytes: 8192,
    now: () => clock.now(),
  });
  verifiers.push(verifier);
  return verifier;
}

describe('a broker configured with only issuer and audience', () => {
  it('finds the key set by discovery and verifies, with the compat routes gone', async () => {
    const discoveries = zuul15.discoveryRequests;
    const fetches = zuul15.jwksRequests;
    const verifier = verifierFor();
    await verifier.refreshKeySets();
    expect(verifier.status()[0]).toMatchObject({ status: 'ok' });
    expect((await verifier.verify(zuul15.mint())).ok).toBe(true);
    // The discovered URL is cached: a refresh goes straight to the key set.
    await verifier.refreshKeySets();
    expect(zuul15.discoveryRequests - discoveries).toBe(1);
    expect(zuul15.jwksRequests - fetches).toBe(2);
  });

  it('looks the key set up again after a fetch from the discovered URL failed', async () => {
    const verifier = verifierFor();
    await verifier.refreshKeySets();
    const discoveries = zuul15.discoveryRequests;
    zuul15.setMode('http500');
    await verifier.refreshKeySets();
    expect(verifier.status()[0]).toMatchObject({ status: 'degraded' });
    zuul15.setMode('ok');
    await verifier.refreshKeySets();
    expect(verifier.status()[0]).toMatchObject({ status: 'ok' });
    expect(zuul15.discoveryRequests - discoveries).toBe(1);
  });

  it('names the discovery URL and what came back when discovery fails', async () => {
    zuul15.setDiscoveryMode('http500');
    const verifier = verifierFor();
    await verifier.refreshKeySets();
    const [status] = verifier.status();
    expect(status?.status).toBe('failing');
    expect(status?.detail).toContain(
      `http status 500 from ${zuul15.issuer}/.well-known/openid-configuration (500, text/plain, body starts "internal error")`,
    );
  });
});

describe('a key set URL that answers something else', () => {
  it('the pre-discovery default against a zuul-web without compat routes: 200 HTML, named', async () => {
    const verifier = verifierFor({ jwksUrl: `${zuul15.issuer}/oidc/.well-known/jwks` });
    await verifier.refreshKeySets();
    const [status] = verifier.status();
    expect(status?.status).toBe('failing');
    expect(status?.detail).toContain(
      `invalid json from ${zuul15.issuer}/oidc/.well-known/jwks (200, text/html, body starts "<!doctype html><html lang="en"><head><meta chars...")`,
    );
    expect((await verifier.verify(zuul15.mint())).ok).toBe(false);
  });

  it('JSON that is not a key set is named with its first bytes', async () => {
    // The discovery document itself, configured as the key set by mistake.
    const verifier = verifierFor({ jwksUrl: zuul15.discoveryUrl });
    await verifier.refreshKeySets();
    expect(verifier.status()[0]?.detail).toMatch(
      /^no key set; last fetch failed: invalid key set from http:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration \(200, application\/json, body starts "\{"issuer":"http:\/\/127\.0\.0\.1:/,
    );
  });
});

describe('the discovered jwks_uri', () => {
  /** What every key set below shares; each adds its own zuul-web (fetchImpl). */
  const KEY_SET_OPTIONS = {
    issuer: 'https://zuul.example.org',
    algorithms: ['RS256'],
    timeoutMs: 1000,
    maxBytes: 65536,
    refreshIntervalSeconds: 300,
    maxStaleSeconds: 3600,
    minRefetchIntervalSeconds: 30,
  } as const;

  function keySetDiscovering(document: unknown, keySet?: () => Response): IssuerKeySet {
    return new IssuerKeySet({
      ...KEY_SET_OPTIONS,
      now: () => clock.now(),
      fetchImpl: async (input) => {
        const url = String(input);
        if (url === 'https://zuul.example.org/.well-known/openid-configuration') {
          return Response.json(document);
        }
        return keySet?.() ?? new Response(null, { status: 404 });
      },
    });
  }

  it.each([
    ['on another host', { jwks_uri: 'https://keys.example.net/oidc/jwks' }, 'on another host'],
    ['plain http', { jwks_uri: 'http://zuul.example.org/oidc/jwks' }, 'not https'],
    [
      'with credentials',
      { jwks_uri: 'https://user:pw@zuul.example.org/oidc/jwks' },
      'carries credentials',
    ],
    ['missing', { issuer: 'https://zuul.example.org' }, 'no jwks_uri'],
  ])('is refused when %s', async (_what, document, reason) => {
    const keySet = keySetDiscovering(document);
    expect(await keySet.refresh()).toBe(false);
    expect(keySet.status()).toMatchObject({ status: 'failing' });
    expect(keySet.status().detail).toContain(reason);
    expect(keySet.status().detail).not.toContain('pw@');
  });

  it('is refused when discovery redirects', async () => {
    const keySet = new IssuerKeySet({
      ...KEY_SET_OPTIONS,
      fetchImpl: async () =>
        new Response(null, { status: 302, headers: { location: 'https://evil.example/' } }),
    });
    expect(await keySet.refresh()).toBe(false);
    expect(keySet.status().detail).toContain(
      'redirect refused from https://zuul.example.org/.well-known/openid-configuration (302)',
    );
  });

  it('a configured jwksUrl wins: no discovery at all', async () => {
    const seen: string[] = [];
    const keySet = new IssuerKeySet({
      ...KEY_SET_OPTIONS,
      jwksUrl: 'https://internal.example.org/oidc/jwks',
      fetchImpl: async (input) => {
        seen.push(String(input));
        return Response.json(zuul15.publicJwks());
      },
    });
    expect(await keySet.refresh()).toBe(true);
    expect(seen).toEqual(['https://internal.example.org/oidc/jwks']);
  });
});

describe('what a failure shows of the answer', () => {
  it('printable ASCII only, and nothing that looks like a token, a password or key material', () => {
    const jwt = zuul15.mint();
    const shown = shownBytes(new TextEncoder().encode(`x\u0001é ${jwt}`));
    expect(shown).toMatch(/^[\x20-\x7e]*$/);
    expect(shown).toBe('x... [...]...');
    expect(shownBytes(new TextEncoder().encode('{"keys": "CANARY-7f3a9c"}'))).toBe(
      '{"keys": "[...]"}',
    );
    expect(shownBytes(new TextEncoder().encode('<!doctype html>'))).toBe('<!doctype html>');
  });

  it('the URL without its query or fragment', () => {
    expect(shownUrl('https://zuul.example.org/oidc/jwks?token=abc#x')).toBe(
      'https://zuul.example.org/oidc/jwks',
    );
  });
});
