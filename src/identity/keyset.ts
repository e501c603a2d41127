/**
 * One issuer's signing keys, fetched from its JWKS URL and cached.
 *
 * The broker must keep working through short issuer outages, so a failed fetch (network,
 * timeout, 5xx, garbage, oversize) never replaces the last good key set; only a key set older
 * than `maxStaleSeconds` stops being used. On-demand refetches (unknown `kid`, failed
 * signature) are rate limited so that forged tokens cannot turn the broker into a load
 * generator against Zuul. Nothing here logs or throws key material or response bodies.
 */

import type { JWK, JWTVerifyGetKey } from 'jose';
import { createLocalJWKSet, importJWK } from 'jose';
import { z } from 'zod';
import type { IssuerStatus } from './types.js';

export interface IdentityLogger {
  warn(obj: object, msg: string): void;
}

/** The class of one key set fetch's result: a closed set, safe as a metric label. */
export type KeySetRefreshOutcome =
  | 'ok'
  | 'timeout'
  | 'unreachable'
  | 'redirect'
  | 'http_status'
  | 'too_large'
  | 'invalid';

export interface IssuerKeySetOptions {
  readonly issuer: string;
  readonly jwksUrl: string;
  /** Algorithms the issuer may use; keys for anything else are ignored. */
  readonly algorithms: readonly string[];
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly refreshIntervalSeconds: number;
  readonly maxStaleSeconds: number;
  readonly minRefetchIntervalSeconds: number;
  readonly fetchImpl?: typeof fetch;
  /** Epoch milliseconds. */
  readonly now?: () => number;
  readonly logger?: IdentityLogger;
  /** Told after every fetch (metrics); gets only the outcome class, not the issuer. */
  readonly onRefresh?: (outcome: KeySetRefreshOutcome) => void;
}

/** An immutable view of one successfully fetched key set. */
export interface KeySetSnapshot {
  /** Increases with every successful fetch, so callers can tell whether a refetch changed anything. */
  readonly generation: number;
  /** Epoch milliseconds of the fetch. */
  readonly fetchedAt: number;
  readonly kids: ReadonlySet<string>;
  readonly getKey: JWTVerifyGetKey;
}

/** A failure whose `reason` is a fixed phrase, safe for logs and status. */
class KeySetFetchError extends Error {
  constructor(
    readonly reason: string,
    readonly outcome: Exclude<KeySetRefreshOutcome, 'ok'>,
  ) {
    super(reason);
    this.name = 'KeySetFetchError';
  }
}

/** Zuul publishes a handful of keys; a set far larger than this is not a Zuul key set. */
const MAX_KEYS = 64;

const JwksDocumentSchema = z.object({ keys: z.array(z.unknown()).max(MAX_KEYS) });

/**
 * Only public members are kept: zod drops everything else, so a private member published by
 * mistake (`d`, `p`, …) never enters the cache.
 */
const PublicJwkSchema = z.object({
  kty: z.enum(['RSA', 'EC', 'OKP']),
  kid: z.string().min(1).max(256),
  use: z.string().optional(),
  key_ops: z.array(z.string()).optional(),
  alg: z.string().optional(),
  n: z.string().optional(),
  e: z.string().optional(),
  crv: z.string().optional(),
  x: z.string().optional(),
  y: z.string().optional(),
});
type PublicJwk = z.infer<typeof PublicJwkSchema>;

const ALGORITHMS_BY_KEY: Record<PublicJwk['kty'], readonly string[]> = {
  RSA: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  EC: ['ES256', 'ES384', 'ES512'],
  OKP: ['EdDSA', 'Ed25519'],
};

const CURVE_BY_ALGORITHM: Record<string, string> = {
  ES256: 'P-256',
  ES384: 'P-384',
  ES512: 'P-521',
};

/** The algorithm this key would be used with, or undefined when the issuer may not use it. */
function signingAlgorithm(jwk: PublicJwk, allowed: readonly string[]): string | undefined {
  const candidates = ALGORITHMS_BY_KEY[jwk.kty].filter((alg) => allowed.includes(alg));
  const fitting = candidates.filter((alg) => {
    const curve = CURVE_BY_ALGORITHM[alg];
    return curve === undefined || curve === jwk.crv;
  });
  if (jwk.alg !== undefined) return fitting.includes(jwk.alg) ? jwk.alg : undefined;
  return fitting[0];
}

/** RSA keys under 2048 bits are refused by jose at verification; drop them at load instead. */
const MIN_RSA_MODULUS_BITS = 2048;

function modulusBits(n: string): number {
  const bytes = Buffer.from(n, 'base64url');
  const first = bytes.findIndex((byte) => byte !== 0);
  if (first === -1) return 0;
  return (bytes.length - first) * 8 - Math.clz32(bytes[first] ?? 0) + 24;
}

function isUsableSignatureKey(jwk: PublicJwk): boolean {
  if (jwk.kty === 'RSA' && (jwk.n === undefined || modulusBits(jwk.n) < MIN_RSA_MODULUS_BITS)) {
    return false;
  }
  if (jwk.use !== undefined && jwk.use !== 'sig') return false;
  return jwk.key_ops === undefined || jwk.key_ops.includes('verify');
}

/** A clean JWK object; optional members are omitted rather than set to undefined. */
function toJwk(jwk: PublicJwk): JWK {
  const out: JWK = { kty: jwk.kty, kid: jwk.kid };
  for (const member of ['use', 'alg', 'n', 'e', 'crv', 'x', 'y'] as const) {
    const value = jwk[member];
    if (value !== undefined) out[member] = value;
  }
  if (jwk.key_ops !== undefined) out.key_ops = [...jwk.key_ops];
  return out;
}

async function usableKeys(document: unknown, allowed: readonly string[]): Promise<JWK[]> {
  const parsed = JwksDocumentSchema.safeParse(document);
  if (!parsed.success) throw new KeySetFetchError('invalid key set', 'invalid');
  const keys: JWK[] = [];
  for (const candidate of parsed.data.keys) {
    const jwk = PublicJwkSchema.safeParse(candidate);
    if (!jwk.success || !isUsableSignatureKey(jwk.data)) continue;
    const alg = signingAlgorithm(jwk.data, allowed);
    if (alg === undefined) continue;
    const clean = toJwk(jwk.data);
    try {
      // Importing now drops keys that would only fail later, at verification time.
      await importJWK(clean, alg);
    } catch {
      continue;
    }
    keys.push(clean);
  }
  if (keys.length === 0) throw new KeySetFetchError('no usable keys', 'invalid');
  return keys;
}

async function readCapped(response: Response, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new KeySetFetchError('response too large', 'too_large');
  }
  const body = response.body;
  if (body === null) throw new KeySetFetchError('empty response', 'invalid');
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new KeySetFetchError('response too large', 'too_large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

function failureOf(error: unknown): {
  reason: string;
  outcome: Exclude<KeySetRefreshOutcome, 'ok'>;
} {
  if (error instanceof KeySetFetchError) return { reason: error.reason, outcome: error.outcome };
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return { reason: 'timeout', outcome: 'timeout' };
  }
  // Messages of fetch errors can carry the URL or peer details; a fixed phrase is enough.
  return { reason: 'fetch failed', outcome: 'unreachable' };
}

export class IssuerKeySet {
  readonly #options: IssuerKeySetOptions;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  #snapshot: KeySetSnapshot | undefined;
  #generation = 0;
  #inFlight: Promise<boolean> | undefined;
  #lastRefetchAt = Number.NEGATIVE_INFINITY;
  #lastFailure: string | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: IssuerKeySetOptions) {
    this.#options = options;
    this.#fetch = options.fetchImpl ?? globalThis.fetch;
    this.#now = options.now ?? Date.now;
  }

  get issuer(): string {
    return this.#options.issuer;
  }

  /** First fetch plus periodic background refresh; the timer never keeps the process alive. */
  start(): void {
    if (this.#timer !== undefined) return;
    void this.refresh();
    this.#timer = setInterval(() => {
      void this.refresh();
    }, this.#options.refreshIntervalSeconds * 1000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Fetches now (joining a fetch already running). Resolves true when a new set was installed. */
  refresh(): Promise<boolean> {
    return this.#inFlight ?? this.#startFetch();
  }

  /**
   * An extra fetch because a token named an unknown `kid` or failed its signature check.
   * At most one per `minRefetchIntervalSeconds`; concurrent callers share one fetch.
   */
  refetch(): Promise<boolean> {
    if (this.#inFlight !== undefined) return this.#inFlight;
    const now = this.#now();
    if (now - this.#lastRefetchAt < this.#options.minRefetchIntervalSeconds * 1000) {
      return Promise.resolve(false);
    }
    this.#lastRefetchAt = now;
    return this.#startFetch();
  }

  /** The cached set if it is young enough to be trusted, without any network. */
  usable(): KeySetSnapshot | undefined {
    const snapshot = this.#snapshot;
    if (snapshot === undefined) return undefined;
    const age = this.#now() - snapshot.fetchedAt;
    return age <= this.#options.maxStaleSeconds * 1000 ? snapshot : undefined;
  }

  /** A usable set, waiting for a running fetch or trying a (rate-limited) one when needed. */
  async keys(): Promise<KeySetSnapshot | undefined> {
    const cached = this.usable();
    if (cached !== undefined) return cached;
    if (this.#inFlight !== undefined) await this.#inFlight;
    else await this.refetch();
    return this.usable();
  }

  status(): IssuerStatus {
    const issuer = this.#options.issuer;
    const snapshot = this.#snapshot;
    if (snapshot === undefined) {
      const detail =
        this.#lastFailure === undefined
          ? 'no key set fetched yet'
          : `no key set; last fetch failed: ${this.#lastFailure}`;
      return { issuer, status: 'failing', detail };
    }
    const ageSeconds = Math.max(0, Math.floor((this.#now() - snapshot.fetchedAt) / 1000));
    if (ageSeconds > this.#options.maxStaleSeconds) {
      return {
        issuer,
        status: 'failing',
        detail: `key set is ${ageSeconds} s old, over the ${this.#options.maxStaleSeconds} s limit`,
      };
    }
    if (this.#lastFailure !== undefined) {
      return {
        issuer,
        status: 'degraded',
        detail: `last refresh failed: ${this.#lastFailure}; key set fetched ${ageSeconds} s ago`,
      };
    }
    return { issuer, status: 'ok', detail: `key set fetched ${ageSeconds} s ago` };
  }

  #startFetch(): Promise<boolean> {
    const pending = this.#fetchOnce().finally(() => {
      this.#inFlight = undefined;
    });
    this.#inFlight = pending;
    return pending;
  }

  async #fetchOnce(): Promise<boolean> {
    try {
      const keys = await this.#load();
      this.#generation += 1;
      this.#snapshot = {
        generation: this.#generation,
        fetchedAt: this.#now(),
        kids: new Set(keys.map((key) => key.kid).filter((kid) => kid !== undefined)),
        getKey: createLocalJWKSet({ keys }),
      };
      this.#lastFailure = undefined;
      this.#options.onRefresh?.('ok');
      return true;
    } catch (error) {
      const { reason, outcome } = failureOf(error);
      this.#lastFailure = reason;
      this.#options.onRefresh?.(outcome);
      this.#options.logger?.warn(
        { issuer: this.#options.issuer, jwksUrl: this.#options.jwksUrl, reason },
        'key set fetch failed, keeping the previous key set',
      );
      return false;
    }
  }

  async #load(): Promise<JWK[]> {
    const { jwksUrl, timeoutMs, maxBytes, algorithms } = this.#options;
    // The signal also bounds reading the body, so a slow trickle cannot hold a fetch open.
    // Redirects are not followed: the key set comes from the configured URL or not at all
    // (a redirect could hand the issuer's trust to another host).
    const response = await this.#fetch(jwksUrl, {
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/json' },
    });
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 300 && response.status < 400) {
        throw new KeySetFetchError('redirect refused', 'redirect');
      }
      throw new KeySetFetchError(`http status ${response.status}`, 'http_status');
    }
    const bytes = await readCapped(response, maxBytes);
    let document: unknown;
    try {
      document = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch {
      throw new KeySetFetchError('invalid json', 'invalid');
    }
    return usableKeys(document, algorithms);
  }
}
