/**
 * node-vault's HTTP transport, on node:http. node-vault builds the URI, sets its headers and
 * turns OpenBao's answers into results and errors; how the bytes travel is pluggable (its
 * documented `request-promise` option). Its default is axios, which cost about 0.6 ms of CPU
 * per call here against about 0.15 ms for this (BENCHMARKS.md, ADR 0008): on a broker that
 * makes one OpenBao call per job request, that was most of its own CPU.
 *
 * What this transport does, and nothing more:
 * - one request on the agent node-vault passes through (the client's bounded agents:
 *   configured origins only, kept-alive connections up to a bound);
 * - never follows a redirect: a 3xx is an answer like any other and fails as `upstream`;
 * - a deadline for the whole exchange (`timeout`), after which the request is destroyed;
 * - at most `maxResponseBytes` of answer, counted as it arrives;
 * - the body parsed as JSON; an empty body is `undefined`; anything else is passed on as
 *   text, which the client rejects as not OpenBao's answer.
 */
import http from 'node:http';
import https from 'node:https';

/** Error codes the client classifies (src/openbao/client.ts). */
export const TIMEOUT_CODE = 'ETIMEDOUT';
export const TOO_LARGE_CODE = 'ZSB_OPENBAO_ANSWER_TOO_LARGE';

/** The part of node-vault's request options this transport reads. */
export interface TransportRequest {
  readonly method: string;
  readonly uri: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly json?: unknown;
  readonly timeout?: number;
  readonly httpAgent?: http.Agent;
  readonly httpsAgent?: https.Agent;
}

/** What node-vault's response handling expects. */
export interface TransportResponse {
  readonly statusCode: number;
  readonly body: unknown;
  readonly request: { readonly path: string };
}

export type TransportFunction = (request: TransportRequest) => Promise<TransportResponse>;

function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function parseBody(bytes: Buffer): unknown {
  if (bytes.length === 0) return undefined;
  const text = bytes.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function createTransport(options: { readonly maxResponseBytes: number }): {
  /** node-vault calls this once with its defaults, which the options below already imply. */
  defaults(rpDefaults: unknown): TransportFunction;
} {
  const send: TransportFunction = (request) =>
    new Promise<TransportResponse>((resolve, reject) => {
      const url = new URL(request.uri);
      const secure = url.protocol === 'https:';
      const payload =
        request.json !== undefined && typeof request.json === 'object'
          ? Buffer.from(JSON.stringify(request.json))
          : undefined;
      const headers: Record<string, string | number> = { ...request.headers };
      if (payload !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = payload.length;
      }
      const requestOptions: http.RequestOptions = {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port,
        path: url.pathname + url.search,
        method: request.method,
        headers,
      };
      const agent = secure ? request.httpsAgent : request.httpAgent;
      if (agent !== undefined) requestOptions.agent = agent;
      const req = (secure ? https : http).request(requestOptions);

      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
        req.destroy();
      };
      const timer =
        request.timeout !== undefined && request.timeout > 0
          ? setTimeout(
              () => fail(codedError('OpenBao call timed out', TIMEOUT_CODE)),
              request.timeout,
            )
          : undefined;

      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > options.maxResponseBytes) {
            fail(codedError('OpenBao answer too large', TOO_LARGE_CODE));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({
            statusCode: res.statusCode ?? 0,
            body: parseBody(Buffer.concat(chunks, received)),
            request: { path: url.pathname },
          });
        });
        res.on('error', fail);
        res.on('aborted', () => fail(codedError('OpenBao answer cut off', 'ECONNRESET')));
      });
      req.on('error', fail);
      req.end(payload);
    });
  return { defaults: () => send };
}
