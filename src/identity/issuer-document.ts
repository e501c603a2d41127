/**
 * One bounded GET of a JSON document from zuul-web: the key set or the OpenID discovery
 * document. Bounded in time (the signal also covers reading the body) and size, redirects
 * refused (a redirect could hand the issuer's trust to another host).
 *
 * zuul-web answers any unknown path with 200 and its dashboard HTML, so "200 but not what
 * we asked for" is the common misconfiguration. Failures therefore say which URL answered
 * and what came back (status, content type, the first bytes as printable ASCII), so an
 * operator can tell a wrong path from a dead host in the log or in /readyz. Nothing that
 * could be a credential is shown: the URL loses its query, and long base64-like runs in
 * the bytes (a JWT, key material) are cut out.
 */
import { readCapped } from '../http/read-capped.js';

/** The class of one fetch's result: a closed set, safe as a metric label. */
export type KeySetRefreshOutcome =
  | 'ok'
  | 'timeout'
  | 'unreachable'
  | 'redirect'
  | 'http_status'
  | 'too_large'
  | 'invalid';

/** A failure whose `reason` is built only from fixed phrases and sanitized values. */
export class IssuerDocumentError extends Error {
  constructor(
    readonly reason: string,
    readonly outcome: Exclude<KeySetRefreshOutcome, 'ok'>,
    /** The HTTP status of an `http_status` failure (a 404 can be an answer, not a fault). */
    readonly status?: number,
  ) {
    super(reason);
    this.name = 'IssuerDocumentError';
  }
}

export interface DocumentFetchOptions {
  readonly fetchImpl: typeof fetch;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** Sent as `Authorization` (a zuul-web auth token for tenants that restrict reads). */
  readonly authorization?: string;
}

export interface FetchedDocument {
  readonly json: unknown;
  /** What came back, for messages about a document that is JSON but not the one expected. */
  readonly answer: string;
}

/** Enough to recognise HTML, an error page or the wrong JSON document. */
const SHOWN_BYTES = 48;
/**
 * Runs of base64/base64url characters that may be a token, a password or key material: long
 * ones, and shorter ones with a digit in them (words of an HTML page rarely have one).
 */
const CREDENTIAL_LIKE_RUN = /[A-Za-z0-9+/=_-]{20,}|[A-Za-z0-9+/=_-]*\d[A-Za-z0-9+/=_-]*/g;
const SHORTEST_HIDDEN_RUN_WITH_DIGIT = 6;

/** The URL as it may appear in logs and status: scheme, host, port and path only. */
export function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

/** The first bytes as printable ASCII (anything else becomes '.'), credential-like runs cut. */
export function shownBytes(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes.subarray(0, SHOWN_BYTES)) {
    text += byte >= 0x20 && byte <= 0x7e ? String.fromCharCode(byte) : '.';
  }
  text = text.replace(CREDENTIAL_LIKE_RUN, (run) =>
    run.length >= SHORTEST_HIDDEN_RUN_WITH_DIGIT ? '[...]' : run,
  );
  return bytes.length > SHOWN_BYTES ? `${text}...` : text;
}

function answerOf(status: number, contentType: string | null, bytes: Uint8Array): string {
  const type = shownBytes(new TextEncoder().encode(contentType?.split(';')[0]?.trim() ?? ''));
  const parts = [String(status), type === '' ? 'no content type' : type];
  parts.push(bytes.length === 0 ? 'empty body' : `body starts "${shownBytes(bytes)}"`);
  return parts.join(', ');
}

/** The start of an error answer's body, for the message; never more than a few bytes. */
async function readStart(response: Response): Promise<Uint8Array> {
  const reader = response.body?.getReader();
  if (reader === undefined) return new Uint8Array();
  try {
    const { value } = await reader.read();
    return value ?? new Uint8Array();
  } catch {
    return new Uint8Array();
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

function failureOf(error: unknown, url: string): IssuerDocumentError {
  if (error instanceof IssuerDocumentError) return error;
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return new IssuerDocumentError(`timeout from ${url}`, 'timeout');
  }
  // Messages of fetch errors can carry the URL with its query or peer details: a fixed phrase.
  return new IssuerDocumentError(`fetch failed from ${url}`, 'unreachable');
}

/** GETs `url` and parses it as JSON, or throws an IssuerDocumentError. */
export async function fetchIssuerDocument(
  url: string,
  options: DocumentFetchOptions,
): Promise<FetchedDocument> {
  const shown = shownUrl(url);
  try {
    const response = await options.fetchImpl(url, {
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
      headers: {
        accept: 'application/json',
        ...(options.authorization === undefined ? {} : { authorization: options.authorization }),
      },
    });
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel().catch(() => undefined);
      throw new IssuerDocumentError(
        `redirect refused from ${shown} (${response.status})`,
        'redirect',
      );
    }
    if (response.status !== 200) {
      const start = await readStart(response);
      const answer = answerOf(response.status, response.headers.get('content-type'), start);
      throw new IssuerDocumentError(
        `http status ${response.status} from ${shown} (${answer})`,
        'http_status',
        response.status,
      );
    }
    const bytes = await readCapped(response, options.maxBytes);
    if (bytes === undefined) {
      throw new IssuerDocumentError(
        `response too large from ${shown} (over ${options.maxBytes} bytes)`,
        'too_large',
      );
    }
    const answer = answerOf(200, response.headers.get('content-type'), bytes);
    try {
      const json: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
      return { json, answer };
    } catch {
      throw new IssuerDocumentError(`invalid json from ${shown} (${answer})`, 'invalid');
    }
  } catch (error) {
    throw failureOf(error, shown);
  }
}
