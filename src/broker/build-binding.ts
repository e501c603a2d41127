/**
 * Build binding (ADR 0014, docs/zuul.md): a verified token is honoured for a fetch only
 * while zuul-web says its build is running, in the token's tenant, pipeline and job. The
 * answer also tells the policy what no claim carries: the canonical project the build runs
 * for and its branch and ref.
 *
 * Bounds: one cached answer per (issuer, build) serves that build's requests for
 * `cacheSeconds`; one zuul-web request in flight per build; a finished build stays refused
 * without asking again; the cache holds at most `maxEntries` builds per issuer. Only
 * verified tokens get here (the HTTP layer verifies first), so forged tokens never cost a
 * zuul-web request. zuul-web slow, down or answering garbage is `unavailable` (503), never
 * "allow".
 *
 * Zuul records a build only after the executor reported its start, so the first request
 * of a build's first playbook can come before the record: an unknown build whose token is
 * younger than `startWaitSeconds` is asked about again (once a second, shared) until it
 * appears or the time is up. It is never allowed meanwhile.
 */
import { LRUCache } from 'lru-cache';
import type { AuditLog } from '../audit/log.js';
import { readPrivateFileSync } from '../config/private-file.js';
import type { BuildBindingConfig, IssuerConfig } from '../config/schema.js';
import { IssuerDocumentError, type KeySetRefreshOutcome } from '../identity/issuer-document.js';
import type { JobIdentity } from '../identity/types.js';
import { type BuildRecord, fetchBuildRecord } from '../zuul/build-record.js';
import { TenantProjectNames } from '../zuul/project-names.js';
import { ZuulWebError } from '../zuul/tenant-projects.js';
import { failure, type Result, UNAUTHENTICATED_DETAIL } from './failure.js';
import { auditUnavailable } from './fetch.js';

/** The class of one zuul-web lookup: a closed set, safe as a metric label. */
export type BindingLookupOutcome =
  | 'running'
  | 'ended'
  | 'unknown'
  | Exclude<KeySetRefreshOutcome, 'ok'>;

export type BindingResult =
  | { readonly ok: true; readonly identity: JobIdentity }
  | { readonly ok: false; readonly kind: 'refused' | 'unavailable'; readonly reason: string };

export interface BindingStatus {
  readonly issuer: string;
  readonly status: 'ok' | 'degraded';
  readonly detail: string;
}

export interface BuildBinder {
  /** Whether tokens of this issuer are bound to running builds. */
  bound(issuer: string): boolean;
  /** The identity with the build's facts, or why not. Issuers without a binding pass as they are. */
  confirm(identity: JobIdentity): Promise<BindingResult>;
  status(): BindingStatus[];
}

export interface BuildBinderOptions {
  readonly fetchImpl?: typeof fetch;
  /** Epoch milliseconds. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** How often an unknown young build is asked about again; default 1000 ms. */
  readonly pollMs?: number;
  /** The zuul-web auth token of each issuer that has one (read by the caller). */
  readonly authTokens?: ReadonlyMap<string, string>;
  /** Told the class of every build lookup (metrics). */
  readonly onLookup?: (outcome: BindingLookupOutcome) => void;
}

type Entry =
  | { readonly state: 'running'; readonly record: BuildRecord; readonly checkedAt: number }
  | { readonly state: 'ended'; readonly result: string }
  | { readonly state: 'unknown'; readonly checkedAt: number };

const DEFAULT_POLL_MS = 1000;

/** Zuul's results are fixed words (SUCCESS, RETRY, CANCELED…); anything else is not logged. */
function shownResult(result: string | null): string {
  return result !== null && /^[A-Z_]{1,32}$/.test(result) ? result : 'no result';
}

const realSleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

class IssuerBinding {
  readonly #issuer: string;
  readonly #config: BuildBindingConfig;
  readonly #webUrl: string;
  readonly #options: BuildBinderOptions;
  readonly #now: () => number;
  readonly #cache: LRUCache<string, Entry>;
  readonly #inFlight = new Map<string, Promise<Entry>>();
  readonly #projects: TenantProjectNames;
  /** How every zuul-web request of this issuer is sent (a build record's size: maxBytes). */
  readonly #request: {
    readonly fetchImpl: typeof fetch;
    readonly timeoutMs: number;
    readonly authorization?: string;
  };
  #lastFailure: { readonly reason: string; readonly at: number } | undefined;
  #lastAnswerAt: number | undefined;

  constructor(issuer: IssuerConfig, config: BuildBindingConfig, options: BuildBinderOptions) {
    this.#issuer = issuer.issuer;
    this.#config = config;
    this.#webUrl = config.webUrl ?? issuer.issuer;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#cache = new LRUCache({ max: config.maxEntries });
    const token = options.authTokens?.get(issuer.issuer);
    this.#request = {
      fetchImpl: options.fetchImpl ?? globalThis.fetch,
      timeoutMs: config.timeoutMs,
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    };
    this.#projects = new TenantProjectNames(this.#webUrl, {
      ...this.#request,
      ...(options.now === undefined ? {} : { now: options.now }),
    });
  }

  async confirm(identity: JobIdentity): Promise<BindingResult> {
    const startWaitMs = this.#config.startWaitSeconds * 1000;
    const waitUntil = identity.issuedAt.getTime() + startWaitMs;
    const pollMs = this.#options.pollMs ?? DEFAULT_POLL_MS;
    const sleep = this.#options.sleep ?? realSleep;
    for (;;) {
      let entry: Entry;
      try {
        entry = await this.#current(identity.tenant, identity.build);
      } catch (error) {
        return { ok: false, kind: 'unavailable', reason: this.#failed(error) };
      }
      if (entry.state === 'ended') {
        return { ok: false, kind: 'refused', reason: `build ended (${entry.result})` };
      }
      if (entry.state === 'running') return this.#bind(identity, entry.record);
      const left = waitUntil - this.#now();
      if (left <= 0) return { ok: false, kind: 'refused', reason: 'build unknown to zuul-web' };
      await sleep(Math.min(pollMs, left));
    }
  }

  /** The cached answer while it is good, else one shared lookup. */
  #current(tenant: string, build: string): Promise<Entry> {
    // Keyed as the lookup URL is: an answer about one tenant's build never serves another's.
    const key = `${tenant}\n${build}`;
    const cached = this.#cache.get(key);
    const now = this.#now();
    if (cached?.state === 'ended') return Promise.resolve(cached);
    if (cached?.state === 'running' && now - cached.checkedAt < this.#config.cacheSeconds * 1000) {
      return Promise.resolve(cached);
    }
    const pollMs = this.#options.pollMs ?? DEFAULT_POLL_MS;
    if (cached?.state === 'unknown' && now - cached.checkedAt < pollMs) {
      return Promise.resolve(cached);
    }
    const running = this.#inFlight.get(key);
    if (running !== undefined) return running;
    const lookup = this.#lookup(key, tenant, build).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, lookup);
    return lookup;
  }

  async #lookup(key: string, tenant: string, build: string): Promise<Entry> {
    let found: Awaited<ReturnType<typeof fetchBuildRecord>>;
    try {
      found = await fetchBuildRecord(this.#webUrl, tenant, build, {
        ...this.#request,
        maxBytes: this.#config.maxBytes,
      });
    } catch (error) {
      // Counted here, once per zuul-web request, not once per request that shared it.
      this.#options.onLookup?.(
        error instanceof IssuerDocumentError ? error.outcome : 'unreachable',
      );
      throw error;
    }
    const checkedAt = this.#now();
    this.#lastAnswerAt = checkedAt;
    this.#lastFailure = undefined;
    let entry: Entry;
    if (!found.found) entry = { state: 'unknown', checkedAt };
    else if (found.record.endTime !== null || found.record.result !== null) {
      // A finished build never runs again (a retry is a new build with a new uuid).
      entry = { state: 'ended', result: shownResult(found.record.result) };
    } else entry = { state: 'running', record: found.record, checkedAt };
    this.#options.onLookup?.(entry.state);
    this.#cache.set(key, entry);
    return entry;
  }

  async #bind(identity: JobIdentity, record: BuildRecord): Promise<BindingResult> {
    // Tenant is part of the URL and the cache key; job and pipeline must be those the token names.
    if (record.jobName !== identity.job || record.pipeline !== identity.pipeline) {
      return { ok: false, kind: 'refused', reason: 'build record does not match the token' };
    }
    let buildProject: string | undefined;
    try {
      buildProject = await this.#projects.canonical(identity.tenant, record.project);
    } catch (error) {
      return { ok: false, kind: 'unavailable', reason: this.#failed(error) };
    }
    return {
      ok: true,
      identity: {
        ...identity,
        ...(buildProject === undefined ? {} : { buildProject }),
        ...(record.branch === '' ? {} : { branch: record.branch }),
        ...(record.ref === '' ? {} : { ref: record.ref }),
      },
    };
  }

  #failed(error: unknown): string {
    // Only these carry checked, credential-free text; anything else gets a fixed phrase.
    const reason =
      error instanceof IssuerDocumentError
        ? error.reason
        : error instanceof ZuulWebError
          ? `project list: ${error.message}`
          : 'zuul-web lookup failed';
    this.#lastFailure = { reason, at: this.#now() };
    return `zuul-web: ${reason}`;
  }

  status(): BindingStatus {
    const issuer = this.#issuer;
    const ago = (at: number) => `${Math.max(0, Math.floor((this.#now() - at) / 1000))} s ago`;
    if (this.#lastFailure !== undefined) {
      return {
        issuer,
        status: 'degraded',
        detail: `build lookups failing (jobs get 503): ${this.#lastFailure.reason}, ${ago(this.#lastFailure.at)}`,
      };
    }
    const last =
      this.#lastAnswerAt === undefined ? 'no lookup yet' : `last answer ${ago(this.#lastAnswerAt)}`;
    return { issuer, status: 'ok', detail: `${this.#cache.size} builds known; ${last}` };
  }
}

/**
 * The zuul-web auth token of each issuer that names a file: private files only, one line,
 * read once at start (a new token needs a restart, like the listener's first TLS pair).
 */
export function readZuulWebTokens(issuers: readonly IssuerConfig[]): Map<string, string> {
  const tokens = new Map<string, string>();
  issuers.forEach((issuer, i) => {
    const file = issuer.buildBinding?.authTokenFile;
    if (file === undefined) return;
    const key = `issuers[${i}].buildBinding.authTokenFile`;
    const token = readPrivateFileSync(file, key).toString('utf8').trim();
    if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
      throw new Error(`${key}: ${file} must hold one bearer token (a JWT) on one line`);
    }
    tokens.set(issuer.issuer, token);
  });
  return tokens;
}

export function createBuildBinder(
  issuers: readonly IssuerConfig[],
  options: BuildBinderOptions = {},
): BuildBinder {
  const bindings = new Map<string, IssuerBinding>();
  for (const issuer of issuers) {
    if (issuer.buildBinding !== undefined) {
      bindings.set(issuer.issuer, new IssuerBinding(issuer, issuer.buildBinding, options));
    }
  }
  return {
    bound: (issuer) => bindings.has(issuer),
    async confirm(identity) {
      const binding = bindings.get(identity.issuer);
      return binding === undefined ? { ok: true, identity } : binding.confirm(identity);
    },
    status: () => [...bindings.values()].map((b) => b.status()),
  };
}

export interface BindRequestDeps {
  readonly binder: BuildBinder;
  readonly audit?: { readonly log: Pick<AuditLog, 'refused'>; readonly requestId: string };
}

/**
 * The use case in front of fetch and whoami: the bound identity, or 401 for a build that
 * is not running (audited first; fail closed when the audit cannot be written), or 503.
 */
export async function bindRequest(
  deps: BindRequestDeps,
  identity: JobIdentity,
  /** The requested names as they may be logged (loggableNames), for the audit line. */
  secrets: readonly string[],
): Promise<Result<JobIdentity>> {
  const result = await deps.binder.confirm(identity);
  if (result.ok) return { ok: true, value: result.identity };
  if (result.kind === 'unavailable') {
    return failure(
      'unavailable',
      'zuul-web could not confirm that the build is running',
      result.reason,
    );
  }
  if (deps.audit !== undefined) {
    try {
      await deps.audit.log.refused({
        requestId: deps.audit.requestId,
        identity,
        secrets,
        reason: result.reason,
      });
    } catch (error) {
      return auditUnavailable(error);
    }
  }
  return failure('unauthenticated', UNAUTHENTICATED_DETAIL, result.reason);
}
