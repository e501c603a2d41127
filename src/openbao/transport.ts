/**
 * One HTTP exchange with one OpenBao node (ADR 0019: undici's connection pool and its
 * low-level `dispatch`, no client library in between; ADR 0008 and 0019 measured why).
 *
 * What this transport does, and nothing more:
 * - one request to the node it was made for, on that node's own pool: the pool connects
 *   only to the node's configured origin (scheme, host, port), with at most
 *   `maxConnections` kept-alive connections; nothing (a redirect, a proxy variable, a
 *   path) can make it connect elsewhere;
 * - the path is the client's: built from validated, percent-encoded segments (paths.ts)
 *   and put after the node's own base path and `/v1` as it is, never parsed again;
 * - the headers are the call's own (its token, namespace, wrapping): nothing is kept
 *   between exchanges, so no call can send another call's token;
 * - never follows a redirect: a 3xx is an answer like any other, which the client fails;
 * - a deadline for the whole exchange (`timeoutMs`, waiting for a connection included),
 *   after which the request is aborted and its connection closed;
 * - at most `maxResponseBytes` of answer, counted as it arrives (the connection is cut
 *   past it);
 * - the body parsed as JSON; an empty body is `undefined`; anything else is passed on as
 *   text, which the client rejects as not OpenBao's answer.
 * Errors carry only a code the client classifies (client.ts `classify`), never the request.
 */
import { Pool } from 'undici';

/** Error codes the client classifies (src/openbao/client.ts). */
export const TIMEOUT_CODE = 'ETIMEDOUT';
export const TOO_LARGE_CODE = 'ZSB_OPENBAO_ANSWER_TOO_LARGE';

export interface ExchangeRequest {
  readonly method: string;
  /** The API path after `/v1`, from `apiPath()` or a fixed literal, with its query. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Sent as a JSON body when present. */
  readonly json?: unknown;
  readonly timeoutMs: number;
}

/** OpenBao's answer: every status is an answer; only the client decides what it means. */
export interface ExchangeAnswer {
  readonly status: number;
  readonly body: unknown;
}

export interface NodeTransport {
  readonly exchange: (request: ExchangeRequest) => Promise<ExchangeAnswer>;
  /** Closes the node's connections; later exchanges fail. */
  readonly close: () => Promise<void>;
}

export interface NodeTransportOptions {
  /** The node's configured address, e.g. `https://bao-0:8200` (a base path is kept). */
  readonly address: string;
  readonly maxResponseBytes: number;
  /** Kept-alive connections to this node, at most. */
  readonly maxConnections: number;
  /** TLS toward the node: a private CA, and a client certificate and key (PEM). */
  readonly tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
}

function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function parseBody(chunks: readonly Buffer[], received: number): unknown {
  if (received === 0) return undefined;
  const bytes = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received);
  const text = bytes.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

interface Controller {
  abort(reason: Error): void;
}

/** The exchange with one node; its address is parsed once, here, not per call. */
export function createNodeTransport(options: NodeTransportOptions): NodeTransport {
  const url = new URL(options.address);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error('an OpenBao address must be http: or https:');
  }
  // `https://host/prefix/` → `/prefix/v1`, as the address was always read.
  const base = `${url.pathname.replace(/\/+$/, '')}/v1`;
  const { maxResponseBytes } = options;
  const pool = new Pool(url.origin, {
    connections: Math.max(1, options.maxConnections),
    pipelining: 1,
    // The exchange's own deadline covers the whole exchange; these would only split it.
    headersTimeout: 0,
    bodyTimeout: 0,
    ...(options.tls ? { connect: { ...options.tls } } : {}),
  });

  const exchange = (request: ExchangeRequest) =>
    new Promise<ExchangeAnswer>((resolve, reject) => {
      const payload =
        request.json !== undefined && typeof request.json === 'object' && request.json !== null
          ? JSON.stringify(request.json)
          : undefined;
      const headers: Record<string, string> =
        payload === undefined
          ? { ...request.headers }
          : { ...request.headers, 'content-type': 'application/json' };
      let controller: Controller | undefined;
      let settled = false;
      let status = 0;
      let received = 0;
      const chunks: Buffer[] = [];
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
        controller?.abort(error);
      };
      const timer = setTimeout(
        () => fail(codedError('OpenBao call timed out', TIMEOUT_CODE)),
        request.timeoutMs,
      );
      pool.dispatch(
        { path: base + request.path, method: request.method, headers, body: payload ?? null },
        {
          onRequestStart(c: Controller) {
            controller = c;
            // Timed out while waiting for a connection: never sent.
            if (settled) c.abort(codedError('OpenBao call timed out', TIMEOUT_CODE));
          },
          onResponseStart(_c: Controller, statusCode: number) {
            status = statusCode;
          },
          onResponseData(_c: Controller, chunk: Buffer) {
            received += chunk.length;
            if (received > maxResponseBytes) {
              fail(codedError('OpenBao answer too large', TOO_LARGE_CODE));
              return;
            }
            chunks.push(chunk);
          },
          onResponseEnd() {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve({ status, body: parseBody(chunks, received) });
          },
          onResponseError(_c: Controller, error: Error) {
            fail(error);
          },
        },
      );
    });
  return { exchange, close: () => pool.close() };
}
