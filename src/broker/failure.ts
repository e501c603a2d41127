/**
 * Expected failures of the broker's use cases, as values. The code is one of the closed
 * list of api.md; `detail` is safe to show the job; `reason` is for the log only and is
 * still value-free (names and kinds, never secret data or tokens).
 */
import { OpenBaoError } from '../openbao/errors.js';
import { UnsafePathError } from '../openbao/paths.js';

export type FailureCode =
  | 'invalid_request'
  | 'unauthenticated'
  | 'forbidden'
  | 'upstream_error'
  | 'unavailable'
  | 'upstream_timeout'
  | 'internal';

export interface BrokerFailure {
  readonly code: FailureCode;
  readonly detail: string;
  readonly reason: string;
}

export type Result<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly failure: BrokerFailure };

export function failure(
  code: FailureCode,
  detail: string,
  reason: string = detail,
): { ok: false; failure: BrokerFailure } {
  return { ok: false, failure: { code, detail, reason } };
}

/** Shown for every 401, whichever check failed (that is only in the log, api.md). */
export const UNAUTHENTICATED_DETAIL = 'a valid Zuul ID token is required';

/** The one answer to "not granted" and "no such secret": they must be indistinguishable. */
export const FORBIDDEN_DETAIL = 'one or more requested secrets are not granted to this job';

/** Maps an error thrown below the broker to a failure a job can act on. */
export function failureFromError(error: unknown, secretName: string): BrokerFailure {
  if (error instanceof UnsafePathError) {
    return {
      code: 'forbidden',
      detail: FORBIDDEN_DETAIL,
      reason: `secret ${secretName}: ${error.message}`,
    };
  }
  if (error instanceof OpenBaoError) {
    const reason = `secret ${secretName}: ${error.message}`;
    switch (error.kind) {
      case 'timeout':
        return { code: 'upstream_timeout', detail: 'OpenBao did not answer in time', reason };
      case 'unavailable':
      case 'sealed':
      case 'rate_limited':
        return { code: 'unavailable', detail: 'OpenBao is unavailable', reason };
      default:
        return {
          code: 'upstream_error',
          detail: 'OpenBao could not deliver a requested secret',
          reason,
        };
    }
  }
  return {
    code: 'internal',
    detail: 'internal error',
    reason: `secret ${secretName}: unexpected error`,
  };
}
