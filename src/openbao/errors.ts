/**
 * Typed OpenBao failures. The message is built only from our own words, the operation
 * name and the status: upstream messages, paths with filled placeholders, request bodies
 * and tokens never reach it, so an OpenBaoError can be logged as it is.
 */
export type OpenBaoErrorKind =
  | 'not_found'
  | 'permission_denied'
  | 'invalid_request'
  | 'cas_mismatch'
  | 'rate_limited'
  | 'sealed'
  | 'unavailable'
  | 'timeout'
  | 'upstream';

export class OpenBaoError extends Error {
  override readonly name = 'OpenBaoError';
  readonly kind: OpenBaoErrorKind;
  /** HTTP status from OpenBao, or 0 when none was received. */
  readonly status: number;
  /** Whether repeating the same idempotent call could succeed. */
  readonly retryable: boolean;
  readonly operation: string;

  constructor(operation: string, kind: OpenBaoErrorKind, status: number) {
    super(`OpenBao ${operation} failed: ${kind}${status ? ` (HTTP ${status})` : ''}`);
    this.operation = operation;
    this.kind = kind;
    this.status = status;
    this.retryable =
      kind === 'rate_limited' || kind === 'sealed' || kind === 'unavailable' || kind === 'timeout';
  }
}

/** Failures that another attempt, a moment later or on another node, could cure. */
export function isTransient(error: OpenBaoError): boolean {
  return error.kind === 'unavailable' || error.kind === 'sealed' || error.kind === 'timeout';
}

/** A write that failed this way may or may not have been applied. */
export function isOutcomeUnknown(error: unknown): boolean {
  return (
    error instanceof OpenBaoError &&
    (error.kind === 'unavailable' || error.kind === 'timeout' || error.kind === 'upstream')
  );
}

/** Maps an HTTP status and OpenBao's error strings to a kind; strings are inspected, never kept. */
export function kindForStatus(status: number, errors: readonly string[]): OpenBaoErrorKind {
  if (status === 404) return 'not_found';
  if (status === 403) return 'permission_denied';
  if (status === 429) return 'rate_limited';
  if (status === 503) return 'sealed';
  if (status === 400 && errors.some((e) => e.includes('check-and-set'))) return 'cas_mismatch';
  if (status === 400) return 'invalid_request';
  // A gateway in front of OpenBao: 502 = OpenBao not reachable behind it, 504 = OpenBao did
  // not answer it in time (api.md: 504 upstream_timeout).
  if (status === 502) return 'unavailable';
  // A standby whose active node is gone (an election, a lost quorum): another moment or
  // another node may answer (ADR 0012).
  if (status === 500 && errors.some((e) => e.includes('active cluster node not found'))) {
    return 'unavailable';
  }
  if (status === 504) return 'timeout';
  return 'upstream';
}
