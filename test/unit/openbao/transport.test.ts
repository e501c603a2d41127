/**
 * The OpenBao client's own HTTP path (transport.ts, and client.ts on top of it): exactly
 * what it sends, and its bounds. A local node:http server stands in for OpenBao's HTTP
 * behaviour here; the same calls against a real OpenBao are in
 * test/integration/openbao-client.test.ts and faults.test.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpenBaoClient } from '../../../src/openbao/client.js';
import { OpenBaoError } from '../../../src/openbao/errors.js';
import {
  createNodeTransport,
  TIMEOUT_CODE,
  TOO_LARGE_CODE,
} from '../../../src/openbao/transport.js';

let server: Server;
let other: Server;
let base: string;
let otherBase: string;
const seen: Array<{
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}> = [];
let otherHits = 0;

const SECRET_VALUE = 's3cr3t-value-in-an-error-body';

function kvAnswer(token: string): string {
  return JSON.stringify({ data: { data: { token }, metadata: { version: 3 } } });
}

function handler(req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.on('data', (c: Buffer) => {
    body += c.toString();
  });
  req.on('end', () => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    const url = new URL(req.url ?? '/', 'http://x');
    const json = (status: number, text: string) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(text);
    switch (url.pathname) {
      case '/v1/json':
        json(200, '{"data":{"a":1}}');
        return;
      case '/v1/empty':
        res.writeHead(204).end();
        return;
      case '/v1/text':
        res.writeHead(200).end('<html>not OpenBao</html>');
        return;
      case '/v1/redirect':
      case '/v1/secret/data/redirect':
        res.writeHead(307, { location: `${otherBase}/v1/secret/data/echo` }).end();
        return;
      case '/v1/slow':
      case '/v1/secret/data/slow':
        setTimeout(() => {
          if (!res.destroyed) json(200, kvAnswer('late'));
        }, 500);
        return;
      case '/v1/huge':
      case '/v1/secret/data/huge':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(`{"pad":"${'x'.repeat(64 * 1024)}`);
        res.end('"}');
        return;
      case '/v1/secret/data/echo': {
        // Answers with the token the call carried, after a delay that differs per call, so
        // that concurrent calls overlap on the same agent.
        const token = String(req.headers['x-vault-token'] ?? '');
        setTimeout(() => json(200, kvAnswer(token)), seen.length % 5);
        return;
      }
      case '/v1/auth/token/lookup-self': {
        // The ttl tells which token the call carried (`build-token-N` → N).
        const token = String(req.headers['x-vault-token'] ?? '');
        const ttl = Number(/(\d+)$/.exec(token)?.[1] ?? -1);
        setTimeout(() => json(200, JSON.stringify({ data: { ttl } })), (ttl * 7) % 11);
        return;
      }
      case '/v1/secret/data/status': {
        // The status to answer comes as kvRead's only query, `version`.
        const status = Number(url.searchParams.get('version') ?? 500);
        json(status, JSON.stringify({ errors: [`upstream words ${SECRET_VALUE}`] }));
        return;
      }
      case '/v1/sys/health':
        json(429, '{"initialized":true,"sealed":false,"standby":true,"version":"2.7.2"}');
        return;
      default:
        json(404, '{"errors":[]}');
    }
  });
}

async function listen(s: Server): Promise<string> {
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const address = s.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

beforeAll(async () => {
  server = createServer(handler);
  other = createServer((_req, res) => {
    otherHits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(kvAnswer('elsewhere'));
  });
  base = await listen(server);
  otherBase = await listen(other);
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await new Promise<void>((resolve) => other.close(() => resolve()));
});

const agents = { maxConnections: 4 };
const exchange = () =>
  createNodeTransport({ address: base, maxResponseBytes: 16 * 1024, ...agents }).exchange;

describe('OpenBao transport', () => {
  it('sends method, path, headers and a JSON body, and parses a JSON answer', async () => {
    const answer = await exchange()({
      method: 'POST',
      path: '/json?x=1',
      headers: { 'X-Vault-Token': 'tkn' },
      json: { b: 2 },
      timeoutMs: 5000,
    });
    expect(answer).toEqual({ status: 200, body: { data: { a: 1 } } });
    const last = seen[seen.length - 1];
    expect(last).toMatchObject({ method: 'POST', url: '/v1/json?x=1', body: '{"b":2}' });
    expect(last?.headers['x-vault-token']).toBe('tkn');
    expect(last?.headers['content-type']).toBe('application/json');
  });

  it("keeps the address's base path before /v1", async () => {
    const prefixed = createNodeTransport({
      address: `${base}/bao/`,
      maxResponseBytes: 1024,
      ...agents,
    }).exchange;
    await prefixed({ method: 'GET', path: '/json', headers: {}, timeoutMs: 5000 });
    expect(seen[seen.length - 1]?.url).toBe('/bao/v1/json');
  });

  it('passes statuses through: no body is undefined, text stays text, 404 is an answer', async () => {
    const send = exchange();
    const get = (path: string) => send({ method: 'GET', path, headers: {}, timeoutMs: 5000 });
    expect((await get('/empty')).body).toBeUndefined();
    expect((await get('/text')).body).toBe('<html>not OpenBao</html>');
    expect(await get('/nothing')).toEqual({ status: 404, body: { errors: [] } });
  });

  it('never follows a redirect', async () => {
    const before = seen.length;
    const hits = otherHits;
    const answer = await exchange()({
      method: 'GET',
      path: '/redirect',
      headers: {},
      timeoutMs: 5000,
    });
    expect(answer.status).toBe(307);
    expect(seen.length).toBe(before + 1);
    expect(otherHits).toBe(hits);
  });

  it('gives up after the deadline and after maxResponseBytes', async () => {
    const send = exchange();
    await expect(
      send({ method: 'GET', path: '/slow', headers: {}, timeoutMs: 100 }),
    ).rejects.toMatchObject({ code: TIMEOUT_CODE });
    await expect(
      send({ method: 'GET', path: '/huge', headers: {}, timeoutMs: 5000 }),
    ).rejects.toMatchObject({ code: TOO_LARGE_CODE });
  });

  it('counts the wait for a connection in the deadline, and never sends a call late', async () => {
    const one = createNodeTransport({ address: base, maxResponseBytes: 1024, maxConnections: 1 });
    const before = seen.length;
    const slow = one.exchange({ method: 'GET', path: '/slow', headers: {}, timeoutMs: 5000 });
    const queued = one.exchange({ method: 'GET', path: '/json', headers: {}, timeoutMs: 100 });
    await expect(queued).rejects.toMatchObject({ code: TIMEOUT_CODE });
    expect((await slow).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen.slice(before).map((s) => s.url)).toEqual(['/v1/slow']);
    await one.close();
  });

  it('cuts the connection of an oversize answer and serves the next call on a new one', async () => {
    const one = createNodeTransport({ address: base, maxResponseBytes: 1024, maxConnections: 1 });
    const get = (path: string) =>
      one.exchange({ method: 'GET', path, headers: {}, timeoutMs: 5000 });
    await expect(get('/huge')).rejects.toMatchObject({ code: TOO_LARGE_CODE });
    expect(await get('/json')).toEqual({ status: 200, body: { data: { a: 1 } } });
    await one.close();
  });

  it('reports an unreachable server with its network error code', async () => {
    const send = createNodeTransport({
      address: 'http://127.0.0.1:1',
      maxResponseBytes: 1024,
      ...agents,
    }).exchange;
    await expect(
      send({ method: 'GET', path: '/json', headers: {}, timeoutMs: 5000 }),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('refuses an address that is not http or https', () => {
    expect(() =>
      createNodeTransport({ address: 'ftp://127.0.0.1', maxResponseBytes: 1, ...agents }),
    ).toThrow(/http/);
  });
});

async function failure(promise: Promise<unknown>): Promise<OpenBaoError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof OpenBaoError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('OpenBao client on the transport', () => {
  const client = (token: () => string = () => 'broker-token', timeoutMs = 2000) =>
    createOpenBaoClient({
      addresses: [base],
      timeoutMs,
      maxConnections: 4,
      token,
      retryBaseDelayMs: 1,
      maxResponseBytes: 16 * 1024,
    });

  it('sends each call its own token, never another call’s, however calls overlap', async () => {
    const c = createOpenBaoClient({
      addresses: [base],
      timeoutMs: 5000,
      maxConnections: 2,
      token: () => 'broker-token',
    });
    // 24 calls, 2 connections, answers out of order: as build tokens (lookupSelf) and as
    // the broker (kvRead), each call must get the answer to its own token.
    const calls = Array.from({ length: 24 }, (_, i) =>
      i % 2 === 0
        ? c.kvRead('secret', 'echo').then((entry) => [0, entry?.data.token === 'broker-token'])
        : c.lookupSelf(`build-token-${i}`).then((self) => [i, self.ttlSeconds === i]),
    );
    for (const [i, own] of await Promise.all(calls)) expect(own, `call ${i}`).toBe(true);
    const echoes = seen.filter((s) => s.url.startsWith('/v1/auth/token/lookup-self'));
    expect(new Set(echoes.map((e) => e.headers['x-vault-token'])).size).toBe(12);
  });

  it('asks for the broker token on every call, so a renewed token applies at once', async () => {
    let current = 'first';
    const c = client(() => current);
    expect((await c.kvRead('secret', 'echo'))?.data.token).toBe('first');
    current = 'second';
    expect((await c.kvRead('secret', 'echo'))?.data.token).toBe('second');
  });

  it('a redirect fails as upstream, unfollowed and unrepeated', async () => {
    const hits = otherHits;
    const before = seen.length;
    const error = await failure(client().kvRead('secret', 'redirect'));
    expect(error).toMatchObject({ kind: 'upstream', status: 307 });
    expect(otherHits).toBe(hits);
    expect(seen.length).toBe(before + 1);
  });

  it('an oversize answer fails as upstream, unrepeated', async () => {
    const before = seen.length;
    expect(await failure(client().kvRead('secret', 'huge'))).toMatchObject({
      kind: 'upstream',
      status: 0,
    });
    expect(seen.length).toBe(before + 1);
  });

  it('a call slower than the timeout fails as timeout, without a second round', async () => {
    const before = seen.length;
    const started = performance.now();
    expect(await failure(client(undefined, 150).kvRead('secret', 'slow'))).toMatchObject({
      kind: 'timeout',
    });
    expect(performance.now() - started).toBeLessThan(450);
    expect(seen.length).toBe(before + 1);
  });

  it('maps statuses to kinds, repeats only transient ones, and keeps no upstream words', async () => {
    const cases: Array<[number, string, number]> = [
      [403, 'permission_denied', 1],
      [400, 'invalid_request', 1],
      [429, 'rate_limited', 1],
      [500, 'upstream', 1],
      [201, 'upstream', 1],
      [502, 'unavailable', 3],
      [503, 'sealed', 3],
      [504, 'timeout', 3],
    ];
    for (const [code, kind, attempts] of cases) {
      const before = seen.length;
      const c = client(() => 'tok-in-header');
      const error = await failure(c.kvRead('secret', 'status', { version: code }));
      expect(error, `HTTP ${code}`).toMatchObject({ kind, status: code });
      expect(seen.length - before, `attempts for HTTP ${code}`).toBe(attempts);
      const text = `${String(error)} ${JSON.stringify(error)} ${error.stack ?? ''}`;
      expect(text).not.toContain(SECRET_VALUE);
      expect(text).not.toContain('upstream words');
      expect(text).not.toContain('tok-in-header');
      expect(text).not.toContain('secret/data');
    }
  });

  it('reads sys/health in any status (a standby answers 429)', async () => {
    expect(await client().health()).toEqual({ status: 'standby', version: '2.7.2' });
  });
});
