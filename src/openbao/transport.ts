/**
 * One HTTP exchange with one OpenBao node, on node:http (ADR 0019: no client library in
 * between; ADR 0008 measured why node:http, ADR 0019 why not node-vault either).
 *
 * What this transport does, and nothing more:
 * - one request to the node it was made for, on the agent it is given (the client's
 *   bounded agents: configured origins only, kept-alive connections up to a bound);
 * - the path is the client's: built from validated, percent-encoded segments (paths.ts)
 *   and put after the node's own base path and `/v1` as it is, never parsed again;
 * - the headers are the call's own (its token, namespace, wrapping): nothing is kept
 *   between exchanges, so no call can send another call's token;
 * - never follows a redirect: a 3xx is an answer like any other, which the client fails;
 * - a deadline for the whole exchange (`timeoutMs`), after which the request is destroyed;
 * - at most `maxResponseBytes` of answer, counted as it arrives;
 * - the body parsed as JSON; an empty body is `undefined`; anything else is passed on as
 *   text, which the client rejects as not OpenBao's answer.
 * Errors carry only a code the client classifies (client.ts `classify`), never the request.
 */
import http from 'node:http';
import https from 'node:https';

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

export type Exchange = (request: ExchangeRequest) => Promise<ExchangeAnswer>;

export interface NodeTransportOptions {
  /** The node's configured address, e.g. `https://bao-0:8200` (a base path is kept). */
  readonly address: string;
  readonly maxResponseBytes: number;
  readonly httpAgent: http.Agent;
  readonly httpsAgent: https.Agent;
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

/** The exchange with one node; its URL is parsed once, here, not per call. */
export function createNodeTransport(options: NodeTransportOptions): Exchange {
  const url = new URL(options.address);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error('an OpenBao address must be http: or https:');
  }
  const secure = url.protocol === 'https:';
  const send = secure ? https.request : http.request;
  const agent = secure ? options.httpsAgent : options.httpAgent;
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port;
  // `https://host/prefix/` → `/prefix/v1`, as the address was always read.
  const base = `${url.pathname.replace(/\/+$/, '')}/v1`;
  const { maxResponseBytes } = options;

  return (request) =>
    new Promise<ExchangeAnswer>((resolve, reject) => {
      const payload =
        request.json !== undefined && typeof request.json === 'object' && request.json !== null
          ? Buffer.from(JSON.stringify(request.json))
          : undefined;
      const headers: Record<string, string | number> = { ...request.headers };
      if (payload !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = payload.length;
      }
      const req = send({
        hostname,
        port,
        path: base + request.path,
        method: request.method,
        headers,
        agent,
      });

      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
        req.destroy();
      };
      const timer = setTimeout(
        () => fail(codedError('OpenBao call timed out', TIMEOUT_CODE)),
        request.timeoutMs,
      );

      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > maxResponseBytes) {
            fail(codedError('OpenBao answer too large', TOO_LARGE_CODE));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: parseBody(chunks, received) });
        });
        res.on('error', fail);
        res.on('aborted', () => fail(codedError('OpenBao answer cut off', 'ECONNRESET')));
      });
      req.on('error', fail);
      req.end(payload);
    });
}
