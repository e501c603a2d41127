/**
 * Identity: turns a raw Zuul ID token into a verified JobIdentity, or a value-free failure.
 *
 * Owns the token contract (shared/design/zuul-token.md): header and claim rules, parsing of
 * `sub`, and each configured issuer's cached key set (found by OpenID discovery unless
 * configured, refreshed in the background, refreshed at once and shared when a token names
 * an unknown kid after a rotation, refetched rate-limited after a key reset; ADR 0010). It
 * knows nothing about HTTP: `invalid_token` and `unavailable` are mapped to 401 and 503 by
 * the HTTP layer.
 */
export { discoveryUrlOf } from './discovery.js';
export type { IdentityLogger, IssuerKeySetOptions, KeySetSnapshot } from './keyset.js';
export { IssuerKeySet, UNKNOWN_KID_REFRESH_SPACING_MS } from './keyset.js';
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
