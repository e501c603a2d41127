/**
 * Verifies Zuul ID tokens (shared/design/zuul-token.md) into a JobIdentity.
 *
 * Cheap, network-free checks come first (size, shape, header, exact issuer) so that junk
 * never costs a key set fetch. Every failure carries a fixed, value-free reason: the token,
 * its claims and jose's messages stay out of results and logs.
 */

import { createHash } from 'node:crypto';
import type { JWTPayload } from 'jose';
import { errors, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import type { IssuerConfig } from '../config/schema.js';
import {
  type IdentityLogger,
  IssuerKeySet,
  type KeySetRefreshOutcome,
  type KeySetSnapshot,
} from './keyset.js';
import { parseSubject } from './subject.js';
import type {
  IssuerStatus,
  JobIdentity,
  TokenVerifier,
  VerifyFailure,
  VerifyResult,
} from './types.js';

export interface TokenVerifierOptions {
  /** Tokens larger than this are rejected before any decoding. */
  readonly maxTokenBytes: number;
  readonly fetchImpl?: typeof fetch;
  /** Epoch milliseconds; injectable so tests control time. */
  readonly now?: () => number;
  /** Waits in `now`'s clock (unknown-kid refresh spacing); injectable for tests. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Overrides UNKNOWN_KID_REFRESH_SPACING_MS (tests). */
  readonly unknownKidSpacingMs?: number;
  readonly logger?: IdentityLogger;
  /** Told the outcome class of every key set fetch, of any issuer (metrics). */
  readonly onKeySetRefresh?: (outcome: KeySetRefreshOutcome) => void;
}

/**
 * Tokens whose signature was verified recently, by SHA-256 of the token. A job presents
 * the same token on every call of its playbook; the RSA check (4096-bit keys at Zuul) is
 * most of a request's CPU. An entry holds the verified claims, is tied to the key set
 * generation it was verified against (a key set change or refresh re-verifies), and ends
 * at the token's expiry; the time-dependent checks run again on every hit. Failures are
 * never cached.
 */
export const VERIFIED_TOKEN_CACHE_ENTRIES = 5000;

interface VerifiedToken {
  readonly issuer: string;
  readonly generation: number;
  readonly payload: JWTPayload;
}

export interface ZuulTokenVerifier extends TokenVerifier {
  /** Fetches every issuer's key set now (joining fetches already running); for start-up and tests. */
  refreshKeySets(): Promise<void>;
}

interface IssuerRuntime {
  readonly config: IssuerConfig;
  readonly keySet: IssuerKeySet;
}

type SignatureCheck =
  | { readonly ok: true; readonly payload: JWTPayload }
  | { readonly ok: false; readonly badSignature: boolean; readonly reason: string };

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Header parameters that would let the token choose its own key or change how it is
 * processed. Zuul sends none of them, so their presence alone is a rejection.
 */
const FORBIDDEN_HEADER_PARAMETERS = ['crit', 'jku', 'jwk', 'x5u', 'x5c', 'b64', 'zip', 'enc'];

/** Zuul's claims, all required. Custom claims are allowed but never read. */
const REQUIRED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat'];

/** Names end up in logs and policy decisions; control and format characters have no place there. */
const nameClaim = z
  .string()
  .min(1)
  .max(1024)
  .refine((value) => !/[\p{Cc}\p{Cf}]/u.test(value));

const ZuulClaimsSchema = z.object({
  iss: z.string(),
  sub: z.string(),
  aud: z.union([z.string(), z.array(z.string()).min(1)]),
  tenant: nameClaim,
  'build-uuid': z.string().regex(/^[0-9a-f]{32}$/),
  'job-name': nameClaim,
  pipeline: nameClaim,
  playbook: nameClaim,
  iat: z.number().int(),
  exp: z.number().int(),
});
const CLAIM_NAMES: ReadonlySet<string> = new Set(Object.keys(ZuulClaimsSchema.shape));

function invalid(reason: string): VerifyResult {
  const failure: VerifyFailure = { kind: 'invalid_token', reason };
  return { ok: false, failure };
}

function unavailable(reason: string): VerifyResult {
  const failure: VerifyFailure = { kind: 'unavailable', reason };
  return { ok: false, failure };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes one compact segment as a JSON object, trusting nothing. */
function decodeSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(strictUtf8.decode(Buffer.from(segment, 'base64url')));
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Fixed phrases for jose's claim failures; the claim name is matched, never echoed. */
function claimFailureReason(error: errors.JWTClaimValidationFailed): string {
  if (error.reason === 'missing') {
    return REQUIRED_CLAIMS.includes(error.claim) ? `missing ${error.claim}` : 'missing claim';
  }
  switch (error.claim) {
    case 'aud':
      return 'wrong audience';
    case 'iss':
      return 'wrong issuer';
    case 'nbf':
      return error.reason === 'invalid' ? 'invalid nbf' : 'token not yet valid';
    case 'iat':
      return error.reason === 'invalid' ? 'invalid iat' : 'iat check failed';
    case 'exp':
      return 'invalid exp';
    case 'typ':
      return 'unexpected typ';
    default:
      return 'invalid claims';
  }
}

function joseFailureReason(error: errors.JOSEError): string {
  if (error instanceof errors.JWTClaimValidationFailed) return claimFailureReason(error);
  switch (error.code) {
    case 'ERR_JWT_EXPIRED':
      return 'token expired';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad signature';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'no matching key';
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'ambiguous kid';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'algorithm not allowed';
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'unsupported token';
    case 'ERR_JWS_INVALID':
      return 'malformed token';
    case 'ERR_JWT_INVALID':
      return 'malformed claims';
    case 'ERR_JWK_INVALID':
    case 'ERR_JWKS_INVALID':
    case 'ERR_JWKS_TIMEOUT':
      return 'unusable key';
    default:
      return 'invalid token';
  }
}

export function createTokenVerifier(
  issuers: IssuerConfig[],
  opts: TokenVerifierOptions,
): ZuulTokenVerifier {
  const now = opts.now ?? Date.now;
  const runtimes = new Map<string, IssuerRuntime>();
  for (const config of issuers) {
    if (runtimes.has(config.issuer)) throw new Error('issuer configured twice');
    const keySet = new IssuerKeySet({
      issuer: config.issuer,
      // Without a configured URL the key set is found by OpenID discovery (ADR 0010).
      ...(config.jwksUrl === undefined ? {} : { jwksUrl: config.jwksUrl }),
      algorithms: config.algorithms,
      ...config.jwks,
      ...(opts.sleep === undefined ? {} : { sleep: opts.sleep }),
      ...(opts.unknownKidSpacingMs === undefined
        ? {}
        : { unknownKidSpacingMs: opts.unknownKidSpacingMs }),
      ...(opts.fetchImpl === undefined ? {} : { fetchImpl: opts.fetchImpl }),
      ...(opts.now === undefined ? {} : { now: opts.now }),
      ...(opts.logger === undefined ? {} : { logger: opts.logger }),
      ...(opts.onKeySetRefresh === undefined ? {} : { onRefresh: opts.onKeySetRefresh }),
    });
    runtimes.set(config.issuer, { config, keySet });
  }
  for (const runtime of runtimes.values()) runtime.keySet.start();
  const verified = new LRUCache<string, VerifiedToken>({
    max: VERIFIED_TOKEN_CACHE_ENTRIES,
    // Expiry is also checked on every hit against `now()`; this only frees memory.
    ttlAutopurge: false,
    allowStale: false,
  });
  /**
   * Tokens whose signature failed, with the key set generation they failed against. A job
   * (or a flood) that repeats one forged token costs one RSA check per key set generation.
   */
  const forged = new LRUCache<string, number>({ max: VERIFIED_TOKEN_CACHE_ENTRIES });

  async function checkSignature(
    rawToken: string,
    config: IssuerConfig,
    snapshot: KeySetSnapshot,
  ): Promise<SignatureCheck> {
    try {
      const { payload } = await jwtVerify(rawToken, snapshot.getKey, {
        algorithms: [...config.algorithms],
        issuer: config.issuer,
        audience: config.audience,
        clockTolerance: config.clockToleranceSeconds,
        requiredClaims: REQUIRED_CLAIMS,
        currentDate: new Date(now()),
      });
      return { ok: true, payload };
    } catch (error) {
      if (error instanceof errors.JOSEError) {
        const badSignature = error instanceof errors.JWSSignatureVerificationFailed;
        return { ok: false, badSignature, reason: joseFailureReason(error) };
      }
      // Only the error's class name: its message may quote the token.
      const name = error instanceof Error ? error.name : typeof error;
      opts.logger?.warn(
        { issuer: config.issuer, error: name },
        'unexpected token verification error',
      );
      return { ok: false, badSignature: false, reason: 'invalid token' };
    }
  }

  function identityFrom(payload: JWTPayload, config: IssuerConfig): VerifyResult {
    const parsed = ZuulClaimsSchema.safeParse(payload);
    if (!parsed.success) {
      const claim = parsed.error.issues[0]?.path[0];
      return invalid(
        typeof claim === 'string' && CLAIM_NAMES.has(claim) ? `invalid ${claim}` : 'invalid claims',
      );
    }
    const claims = parsed.data;
    const tolerance = config.clockToleranceSeconds;
    const nowSeconds = Math.floor(now() / 1000);
    if (claims.exp <= claims.iat) return invalid('invalid lifetime');
    if (claims.exp - claims.iat > config.maxLifetimeSeconds) return invalid('lifetime too long');
    if (claims.iat > nowSeconds + tolerance) return invalid('iat in the future');
    if (nowSeconds - claims.iat > config.maxAgeSeconds + tolerance) return invalid('token too old');

    const subject = parseSubject(claims.sub);
    if (!subject.ok) return invalid(subject.reason);
    if (subject.subject.tenant !== claims.tenant) return invalid('tenant mismatch');

    const identity: JobIdentity = {
      issuer: config.issuer,
      tenant: subject.subject.tenant,
      project: subject.subject.project,
      secret: subject.subject.secret,
      build: claims['build-uuid'],
      job: claims['job-name'],
      pipeline: claims.pipeline,
      playbook: claims.playbook,
      issuedAt: new Date(claims.iat * 1000),
      expiresAt: new Date(claims.exp * 1000),
    };
    return { ok: true, identity };
  }

  async function verify(rawToken: string): Promise<VerifyResult> {
    if (typeof rawToken !== 'string' || rawToken.length === 0) return invalid('empty token');
    // length first: it bounds byteLength's work on absurd input (a UTF-16 unit is ≥ 1 byte).
    if (
      rawToken.length > opts.maxTokenBytes ||
      Buffer.byteLength(rawToken, 'utf8') > opts.maxTokenBytes
    ) {
      return invalid('token too large');
    }
    if (!COMPACT_JWS.test(rawToken)) return invalid('malformed token');
    const [encodedHeader = '', encodedPayload = ''] = rawToken.split('.');

    const header = decodeSegment(encodedHeader);
    if (header === undefined) return invalid('malformed header');
    const { alg, kid, typ } = header;
    if (typeof alg !== 'string') return invalid('missing alg');
    if (/^none$/i.test(alg) || /^hs/i.test(alg)) return invalid('algorithm not allowed');
    if (typeof kid !== 'string' || kid.length === 0 || kid.length > 256) {
      return invalid('missing kid');
    }
    if (typ !== undefined && (typeof typ !== 'string' || typ.toUpperCase() !== 'JWT')) {
      return invalid('unexpected typ');
    }
    if (FORBIDDEN_HEADER_PARAMETERS.some((name) => Object.hasOwn(header, name))) {
      return invalid('forbidden header parameter');
    }

    // Read without trust, only to choose the issuer (and so the keys) to verify against.
    const unverified = decodeSegment(encodedPayload);
    if (unverified === undefined) return invalid('malformed claims');
    if (typeof unverified.iss !== 'string') return invalid('missing iss');
    const runtime = runtimes.get(unverified.iss);
    if (runtime === undefined) return invalid('unknown issuer');
    const { config, keySet } = runtime;
    if (!config.algorithms.some((allowed) => allowed === alg)) {
      return invalid('algorithm not allowed');
    }

    let snapshot = await keySet.keys();
    if (snapshot === undefined) return unavailable('key set unavailable');
    let refetched = false;
    if (!snapshot.kids.has(kid)) {
      // Zuul may have rotated: it signs with a new key at once, never publishing it first.
      // Wait for a refresh that starts after this request arrived (paced, single flight).
      refetched = true;
      await keySet.refreshForUnknownKid();
      snapshot = keySet.usable();
      if (snapshot === undefined) return unavailable('key set unavailable');
      if (!snapshot.kids.has(kid)) return invalid('unknown kid');
    }

    const cacheKey = createHash('sha256').update(rawToken).digest('base64url');
    const cached = verified.get(cacheKey);
    // The same bytes failed their signature check against these very keys: they fail again.
    if (forged.get(cacheKey) === snapshot.generation) return invalid('bad signature');
    if (
      cached !== undefined &&
      cached.issuer === config.issuer &&
      cached.generation === snapshot.generation &&
      typeof cached.payload.exp === 'number' &&
      now() < (cached.payload.exp + config.clockToleranceSeconds) * 1000
    ) {
      return identityFrom(cached.payload, config);
    }

    let check = await checkSignature(rawToken, config, snapshot);
    let checkedWith = snapshot;
    if (!check.ok && check.badSignature && !refetched) {
      // After `zuul-admin delete-oidc-signing-keys` the same kid (RS256-0) names a new key.
      const before = snapshot.generation;
      await keySet.refetch();
      const next = keySet.usable();
      if (next !== undefined && next.generation !== before && next.kids.has(kid)) {
        check = await checkSignature(rawToken, config, next);
        checkedWith = next;
      }
    }
    if (!check.ok) {
      if (check.badSignature) forged.set(cacheKey, checkedWith.generation);
      return invalid(check.reason);
    }
    const result = identityFrom(check.payload, config);
    const generation = checkedWith.generation;
    if (result.ok && typeof check.payload.exp === 'number') {
      const ttl = (check.payload.exp + config.clockToleranceSeconds) * 1000 - now();
      if (ttl > 0) {
        verified.set(
          cacheKey,
          { issuer: config.issuer, generation, payload: check.payload },
          { ttl },
        );
      }
    }
    return result;
  }

  function status(): IssuerStatus[] {
    return [...runtimes.values()].map((runtime) => runtime.keySet.status());
  }

  function close(): void {
    for (const runtime of runtimes.values()) runtime.keySet.stop();
  }

  async function refreshKeySets(): Promise<void> {
    await Promise.all([...runtimes.values()].map((runtime) => runtime.keySet.refresh()));
  }

  return { verify, status, close, refreshKeySets };
}
