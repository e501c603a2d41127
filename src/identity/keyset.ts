/**
 * One issuer's signing keys, fetched from its key set URL (configured, or found by OpenID
 * discovery: ADR 0010) and cached.
 *
 * The broker must keep working through short issuer outages, so a failed fetch (network,
 * timeout, 5xx, garbage, oversize) never replaces the last good key set; only a key set older
 * than `maxStaleSeconds` stops being used.
 *
 * Zuul signs with a new key the moment it rotates, without publishing it first, so a token
 * naming an unknown `kid` waits for a key set refresh that starts after it arrived. Those
 * refreshes are single flight and start at most once per `unknownKidSpacingMs`, so a flood of
 * invented kids costs zuul-web at most one fetch per spacing, and one invented kid just before
 * a real rotation delays the real job by at most that spacing (ADR 0010). Refetches after a
 * failed signature on a known kid (Zuul's key reset) keep the slower `minRefetchIntervalSeconds`.
 * Nothing here logs or throws key material or response bodies beyond a sanitized first few bytes.
 */

import type { JWK, JWTVerifyGetKey } from 'jose';
import { createLocalJWKSet } from 'jose';
import { discoverKeySetUrl } from './discovery.js';
import {
  fetchIssuerDocument,
  IssuerDocumentError,
  type KeySetRefreshOutcome,
  shownUrl,
} from './issuer-document.js';
import { usableKeys } from './jwk.js';
import type { IssuerStatus } from './types.js';

export interface IdentityLogger {
  warn(obj: object, msg: string): void;
}

export type { KeySetRefreshOutcome } from './issuer-document.js';

export interface IssuerKeySetOptions {
  readonly issuer: string;
  /** The configured key set URL; without one, the URL comes from OpenID discovery. */
  readonly jwksUrl?: string;
  /** Algorithms the issuer may use; keys for anything else are ignored. */
  readonly algorithms: readonly string[];
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly refreshIntervalSeconds: number;
  readonly maxStaleSeconds: number;
  /** Spacing of refetches after a failed signature on a known kid, and when the cache is stale. */
  readonly minRefetchIntervalSeconds: number;
  /** Spacing of refreshes for unknown kids; defaults to UNKNOWN_KID_REFRESH_SPACING_MS. */
  readonly unknownKidSpacingMs?: number;
  readonly fetchImpl?: typeof fetch;
  /** Epoch milliseconds. */
  readonly now?: () => number;
  /** Waits this many milliseconds (of `now`'s clock); injectable for tests with a fake clock. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly logger?: IdentityLogger;
  /** Told after every fetch (metrics); gets only the outcome class, not the issuer. */
  readonly onRefresh?: (outcome: KeySetRefreshOutcome) => void;
}

/**
 * How soon after one unknown-kid refresh the next may start. Short, because a job whose
 * token names a freshly rotated key waits this long at most (one invented kid may have used
 * the previous slot just before the rotation); long enough that a flood of invented kids is
 * at most one small GET per second at zuul-web.
 */
export const UNKNOWN_KID_REFRESH_SPACING_MS = 1000;

/** An immutable view of one successfully fetched key set. */
export interface KeySetSnapshot {
  /** Increases with every successful fetch, so callers can tell whether a refetch changed anything. */
  readonly generation: number;
  /** Epoch milliseconds of the fetch. */
  readonly fetchedAt: number;
  readonly kids: ReadonlySet<string>;
  readonly getKey: JWTVerifyGetKey;
}

interface ScheduledRefresh {
  /** Epoch milliseconds at which the fetch starts (or started). */
  readonly startsAt: number;
  readonly done: Promise<boolean>;
}

function failureOf(error: unknown): IssuerDocumentError {
  if (error instanceof IssuerDocumentError) return error;
  // Only IssuerDocumentErrors carry checked text; anything else gets a fixed phrase.
  return new IssuerDocumentError('key set fetch failed', 'unreachable');
}

/** A pending unknown-kid refresh never keeps a stopping process alive. */
const realSleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

export class IssuerKeySet {
  readonly #options: IssuerKeySetOptions;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #unknownKidSpacingMs: number;
  #snapshot: KeySetSnapshot | undefined;
  #generation = 0;
  #inFlight: Promise<boolean> | undefined;
  #lastRefetchAt = Number.NEGATIVE_INFINITY;
  #unknownKidRefresh: ScheduledRefresh | undefined;
  #lastUnknownKidRefreshAt = Number.NEGATIVE_INFINITY;
  /** Found by discovery and kept until a fetch from it fails (then discovery runs again). */
  #discoveredJwksUrl: string | undefined;
  #lastFailure: string | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: IssuerKeySetOptions) {
    this.#options = options;
    this.#fetch = options.fetchImpl ?? globalThis.fetch;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? realSleep;
    this.#unknownKidSpacingMs = options.unknownKidSpacingMs ?? UNKNOWN_KID_REFRESH_SPACING_MS;
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
   * An extra fetch because a token failed its signature check on a known kid (Zuul's key
   * reset reuses `RS256-0` with a new key) or the cache is too old to use. At most one per
   * `minRefetchIntervalSeconds`; concurrent callers share one fetch.
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

  /**
   * A refresh for a token whose `kid` is not in the cache: resolves once a fetch that started
   * no earlier than this call has finished, so a key published just before the token was
   * minted is seen. Callers that arrive while such a fetch is still due share it; otherwise
   * the next one is due `unknownKidSpacingMs` after the previous one started (or now).
   */
  refreshForUnknownKid(): Promise<boolean> {
    const arrivedAt = this.#now();
    const scheduled = this.#unknownKidRefresh;
    if (scheduled !== undefined && scheduled.startsAt >= arrivedAt) return scheduled.done;
    const startsAt = Math.max(arrivedAt, this.#lastUnknownKidRefreshAt + this.#unknownKidSpacingMs);
    this.#lastUnknownKidRefreshAt = startsAt;
    const done = this.#fetchAt(startsAt - arrivedAt);
    const entry: ScheduledRefresh = { startsAt, done };
    this.#unknownKidRefresh = entry;
    void done.then(() => {
      if (this.#unknownKidRefresh === entry) this.#unknownKidRefresh = undefined;
    });
    return done;
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
      const last =
        this.#lastFailure === undefined ? '' : `; last fetch failed: ${this.#lastFailure}`;
      return {
        issuer,
        status: 'failing',
        detail: `key set is ${ageSeconds} s old, over the ${this.#options.maxStaleSeconds} s limit${last}`,
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

  /** After `delayMs`, one fetch, never beside another: a fetch still running started too early. */
  async #fetchAt(delayMs: number): Promise<boolean> {
    if (delayMs > 0) await this.#sleep(delayMs);
    while (this.#inFlight !== undefined) await this.#inFlight;
    return this.#startFetch();
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
        { issuer: this.#options.issuer, reason },
        'key set fetch failed, keeping the previous key set',
      );
      return false;
    }
  }

  async #jwksUrl(): Promise<string> {
    if (this.#options.jwksUrl !== undefined) return this.#options.jwksUrl;
    this.#discoveredJwksUrl ??= await discoverKeySetUrl(this.#options.issuer, this.#limits());
    return this.#discoveredJwksUrl;
  }

  #limits() {
    const { timeoutMs, maxBytes } = this.#options;
    return { fetchImpl: this.#fetch, timeoutMs, maxBytes };
  }

  async #load(): Promise<JWK[]> {
    const url = await this.#jwksUrl();
    try {
      const { json, answer } = await fetchIssuerDocument(url, this.#limits());
      try {
        return await usableKeys(json, this.#options.algorithms);
      } catch (error) {
        const { reason, outcome } = failureOf(error);
        throw new IssuerDocumentError(`${reason} from ${shownUrl(url)} (${answer})`, outcome);
      }
    } catch (error) {
      // A discovered URL that stopped working is looked up again next time (Zuul moved it?).
      this.#discoveredJwksUrl = undefined;
      throw error;
    }
  }
}
