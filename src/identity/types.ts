/**
 * The verified identity of one Zuul job, as the broker uses it for every decision.
 * Built only from verified claims of a Zuul ID token (see shared/design/zuul-token.md);
 * custom claims are never copied here, so nothing the change author wrote can be matched.
 */
export interface JobIdentity {
  /** Exact `iss` of the token; equals a configured issuer. */
  readonly issuer: string;
  /** Tenant from `sub` (equal to the `tenant` claim). */
  readonly tenant: string;
  /** Canonical project (`host/org/repo…`) from `sub`. */
  readonly project: string;
  /** Zuul secret name (last segment of `sub`). */
  readonly secret: string;
  /** `build-uuid`: 32 lowercase hex characters. */
  readonly build: string;
  /** `job-name`. */
  readonly job: string;
  readonly pipeline: string;
  readonly playbook: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  /**
   * What the build binding (ADR 0014) learnt from zuul-web about the running build: the
   * canonical project it runs for, its branch and ref. Absent without a binding, and each
   * absent when zuul-web did not say (a tag has no branch): grants that match them then fail.
   */
  readonly buildProject?: string;
  readonly branch?: string;
  readonly ref?: string;
}

/**
 * Why a token was not accepted. `reason` is a fixed, value-free phrase for the log
 * (e.g. "token expired", "unknown kid"): it never contains the token or claim values.
 * - `invalid_token` → HTTP 401
 * - `unavailable`   → HTTP 503 (the issuer's key set cannot be had and the cache is too old)
 */
export type VerifyFailure =
  | { readonly kind: 'invalid_token'; readonly reason: string }
  | { readonly kind: 'unavailable'; readonly reason: string };

export type VerifyResult =
  | { readonly ok: true; readonly identity: JobIdentity }
  | { readonly ok: false; readonly failure: VerifyFailure };

/** Readiness of one issuer's key set, for /readyz. */
export interface IssuerStatus {
  readonly issuer: string;
  readonly status: 'ok' | 'degraded' | 'failing';
  /** Human text without secrets, e.g. "key set fetched 12 s ago". */
  readonly detail: string;
}

/** The one injectable verifier the HTTP layer uses. */
export interface TokenVerifier {
  verify(rawToken: string): Promise<VerifyResult>;
  status(): IssuerStatus[];
  /** Stops background timers, if any. */
  close(): void;
}
