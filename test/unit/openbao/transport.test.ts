/** node-vault's transport on node:http: exactly what it sends, and its bounds. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport, TIMEOUT_CODE, TOO_LARGE_CODE } from '../../../src/openbao/transport.js';

let server: Server;
let base: string;
const seen: Array<{
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}> = [];

function handler(req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.on('data', (c: Buffer) => {
    body += c.toString();
  });
  req.on('end', () => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    switch (new URL(req.url ?? '/', 'http://x').pathname) {
      case '/v1/json':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"a":1}}');
        return;
      case '/v1/empty':
        res.writeHead(204).end();
        return;
      case '/v1/text':
        res.writeHead(200).end('<html>not OpenBao</html>');
        return;
      case '/v1/redirect':
        res.writeHead(307, { location: `${base}/v1/json` }).end();
        return;
      case '/v1/slow':
        setTimeout(() => res.writeHead(200).end('{}'), 500);
        return;
      case '/v1/huge':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(`{"pad":"${'x'.repeat(64 * 1024)}`);
        res.end('"}');
        return;
      default:
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[]}');
    }
  });
}

beforeAll(async () => {
  server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const send = createTransport({ maxResponseBytes: 16 * 1024 }).defaults({});

describe('OpenBao transport', () => {
  it('sends method, headers and a JSON body, and parses a JSON answer', async () => {
    const answer = await send({
      method: 'POST',
      uri: `${base}/v1/json?x=1`,
      headers: { 'X-Vault-Token': 'tkn' },
      json: { b: 2 },
    });
    expect(answer).toEqual({
      statusCode: 200,
      body: { data: { a: 1 } },
      request: { path: '/v1/json' },
    });
    const last = seen[seen.length - 1];
    expect(last).toMatchObject({ method: 'POST', url: '/v1/json?x=1', body: '{"b":2}' });
    expect(last?.headers['x-vault-token']).toBe('tkn');
    expect(last?.headers['content-type']).toBe('application/json');
  });

  it('passes statuses through: no body is undefined, text stays text, 404 is an answer', async () => {
    expect((await send({ method: 'GET', uri: `${base}/v1/empty` })).body).toBeUndefined();
    expect((await send({ method: 'GET', uri: `${base}/v1/text` })).body).toBe(
      '<html>not OpenBao</html>',
    );
    expect(await send({ method: 'GET', uri: `${base}/v1/nothing` })).toMatchObject({
      statusCode: 404,
      body: { errors: [] },
    });
  });

  it('never follows a redirect', async () => {
    const before = seen.length;
    const answer = await send({ method: 'GET', uri: `${base}/v1/redirect` });
    expect(answer.statusCode).toBe(307);
    expect(seen.length).toBe(before + 1);
  });

  it('gives up after the timeout and after maxResponseBytes', async () => {
    await expect(
      send({ method: 'GET', uri: `${base}/v1/slow`, timeout: 100 }),
    ).rejects.toMatchObject({
      code: TIMEOUT_CODE,
    });
    await expect(send({ method: 'GET', uri: `${base}/v1/huge` })).rejects.toMatchObject({
      code: TOO_LARGE_CODE,
    });
  });

  it('reports an unreachable server with its network error code', async () => {
    await expect(send({ method: 'GET', uri: 'http://127.0.0.1:1/v1/json' })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });
});
