/**
 * The closed list of error codes (api.md "Errors"), their one HTTP status table, and the
 * problem+json body. Bodies carry only our own words: never upstream text or err.message.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  upstream_error: 502,
  unavailable: 503,
  upstream_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

const TITLES: Record<ErrorCode, string> = {
  invalid_request: 'Invalid request',
  unauthenticated: 'Unauthenticated',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  rate_limited: 'Too many requests',
  internal: 'Internal error',
  upstream_error: 'Upstream error',
  unavailable: 'Unavailable',
  upstream_timeout: 'Upstream timeout',
};

export interface ProblemBody {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: ErrorCode;
  readonly requestId: string;
}

export function problem(code: ErrorCode, detail: string, requestId: string): ProblemBody {
  return {
    type: 'about:blank',
    title: TITLES[code],
    status: ERROR_STATUS[code],
    detail,
    code,
    requestId,
  };
}
