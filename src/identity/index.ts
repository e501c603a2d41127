/**
 * Identity: turns a raw Zuul ID token into a verified JobIdentity, or a value-free failure.
 *
 * Owns the token contract (shared/design/zuul-token.md): header and claim rules, parsing of
 * `sub`, and each configured issuer's cached key set (fetch, refresh, rate-limited refetch on
 * key rotation or reset). It knows nothing about HTTP: `invalid_token` and `unavailable` are
 * mapped to 401 and 503 by the HTTP layer.
 */
export type { IdentityLogger, IssuerKeySetOptions, KeySetSnapshot } from './keyset.js';
export { IssuerKeySet } from './keyset.js';
export type { SubjectParseResult, ZuulSubject } from './subject.js';
export { parseSubject } from './subject.js';
export type {
  IssuerStatus,
  JobIdentity,
  TokenVerifier,
  VerifyFailure,
  VerifyResult,
} from './types.js';
export type { TokenVerifierOptions, ZuulTokenVerifier } from './verifier.js';
export { createTokenVerifier } from './verifier.js';
