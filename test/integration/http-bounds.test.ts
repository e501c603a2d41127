/**
 * Every bound of the broker's HTTP server, tried over real sockets against a running
 * broker: header size, slow headers (slowloris), slow bodies, idle keep-alive connections,
 * the connection cap, chunked bodies without a length, and JSON bodies built to pollute
 * prototypes or exhaust the parser.
 */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KvBroker, startKvBroker } from '../support/kv-broker.js';

/** The broker's request timeout here; the header timeout is the same (min(10 s, this)). */
const REQUEST_TIMEOUT_MS = 2000;
/** Node checks request and header timeouts on this period (the broker sets it to 1 s). */
const CHECK_INTERVAL_MS = 1000;
const KEEP_ALIVE_TIMEOUT_MS = 5000;
const MAX_CONNECTIONS = 4;

let fx: KvBroker;
let capped: KvBroker;

beforeAll(async () => {
  [fx, capped] = await Promise.all([
    startKvBroker('bounds', { http: { requestTimeoutMs: REQUEST_TIMEOUT_MS } }),
    startKvBroker('capped', { http: { maxConnections: MAX_CONNECTIONS } }),
  ]);
});
afterAll(async () => {
  await fx?.close();
  await capped?.close();
});

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

/** One request on its own connection (closed afterwards), so no test holds a slot. */
function send(
  base: string,
  route: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    /** Written as chunks without a content-length (chunked transfer encoding). */
    chunks?: readonly string[];
    body?: string;
  } = {},
): Promise<Answer> {
  const url = new URL(route, base);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? 'GET', agent: false, headers: options.headers ?? {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.once('error', reject);
      },
    );
    req.once('error', reject);
    if (options.chunks) {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

function hostPort(base: string): { host: string; port: number } {
  const url = new URL(base);
  return { host: url.hostname, port: Number(url.port) };
}

/** A raw TCP connection to the broker; `closed` resolves with what the server sent. */
async function rawConnection(base: string): Promise<{
  socket: Socket;
  received: () => string;
  closed: Promise<{ received: string; afterMs: number }>;
}> {
  const socket = connect(hostPort(base));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const opened = performance.now();
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('utf8');
  });
  socket.on('error', () => undefined);
  const closed = new Promise<{ received: string; afterMs: number }>((resolve) =>
    socket.once('close', () => resolve({ received, afterMs: performance.now() - opened })),
  );
  return { socket, received: () => received, closed };
}

/** Writes `text` one byte every `everyMs` until the socket closes; returns a stop function. */
function trickle(socket: Socket, text: string, everyMs: number): () => void {
  let index = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || index >= text.length) {
      clearInterval(timer);
      return;
    }
    socket.write(text[index] ?? '');
    index += 1;
  }, everyMs);
  return () => clearInterval(timer);
}

const bearer = () => ({ authorization: `Bearer ${fx.issuer.mint()}` });

describe('headers', () => {
  it('answers 431 to headers over 16 KiB, before the broker sees the request', async () => {
    const before = fx.logs.lines.length;
    const answer = await send(fx.broker.url, '/v1/secrets/clouds', {
      headers: { ...bearer(), 'x-padding': 'x'.repeat(17 * 1024) },
    });
    expect(answer.status).toBe(431);
    expect(answer.text).not.toContain(fx.secret.password);
    // Just under the limit is served as usual.
    const fits = await send(fx.broker.url, '/v1/secrets/clouds', {
      headers: { ...bearer(), 'x-padding': 'x'.repeat(12 * 1024) },
    });
    expect(fits.status).toBe(200);
    // Only the served request reached the broker's request log.
    const lines = fx.logs.entries().slice(before);
    expect(lines.filter((l) => l.msg === 'request').map((l) => l.status)).toEqual([200]);
  });

  it('cuts off a client that sends its headers too slowly (slowloris) within the header timeout', async () => {
    const { socket, closed } = await rawConnection(fx.broker.url);
    const stop = trickle(
      socket,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(1000)}\r\n\r\n`,
      100,
    );
    const { received, afterMs } = await closed;
    stop();
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(afterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
    expect(afterMs).toBeLessThan(REQUEST_TIMEOUT_MS + CHECK_INTERVAL_MS + 1000);
  });

  it('cuts off a client that sends its body too slowly within the request timeout', async () => {
    const { socket, closed } = await rawConnection(fx.broker.url);
    const body = JSON.stringify({ secrets: ['clouds'] }).padEnd(200, ' ');
    socket.write(
      `POST /v1/fetch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${fx.issuer.mint()}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    const stop = trickle(socket, body, 100);
    const { received, afterMs } = await closed;
    stop();
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(received).not.toContain(fx.secret.password);
    expect(afterMs).toBeLessThan(REQUEST_TIMEOUT_MS + CHECK_INTERVAL_MS + 1000);
  });
});

describe('connections', () => {
  it('closes an idle keep-alive connection after the keep-alive timeout', async () => {
    const { socket, closed } = await rawConnection(fx.broker.url);
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const { received, afterMs } = await closed;
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(received).toMatch(/Keep-Alive: timeout=5/i);
    expect(afterMs).toBeGreaterThanOrEqual(KEEP_ALIVE_TIMEOUT_MS - 500);
    expect(afterMs).toBeLessThan(KEEP_ALIVE_TIMEOUT_MS + 3000);
  }, 15000);

  it(`accepts at most http.maxConnections (${MAX_CONNECTIONS}) connections at once`, async () => {
    const held = await Promise.all(
      Array.from({ length: MAX_CONNECTIONS }, () => rawConnection(capped.broker.url)),
    );
    try {
      // Each held connection is really served.
      for (const { socket } of held) socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => held.every((h) => /^HTTP\/1\.1 200 /.test(h.received())));
      // One more is dropped at once, without an answer.
      const extra = await rawConnection(capped.broker.url);
      extra.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      const dropped = await extra.closed;
      expect(dropped.received).toBe('');
    } finally {
      for (const { socket } of held) socket.destroy();
    }
    // Once they are gone, new connections are served again.
    await waitFor(async () => {
      const answer = await send(capped.broker.url, '/healthz').catch(() => undefined);
      return answer?.status === 200;
    });
  });
});

describe('bodies', () => {
  it('answers 413 to a chunked body over http.maxBodyBytes that declares no length', async () => {
    const piece = 'x'.repeat(1024);
    const answer = await send(fx.broker.url, '/v1/fetch', {
      method: 'POST',
      headers: { ...bearer(), 'content-type': 'application/json' },
      chunks: ['{"secrets":["clouds"],"pad":"', ...Array.from({ length: 20 }, () => piece), '"}'],
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.text)).toMatchObject({ code: 'payload_too_large' });
    expect(answer.text).not.toContain(fx.secret.password);
    // A small chunked body is read whole and served.
    const small = await send(fx.broker.url, '/v1/fetch', {
      method: 'POST',
      headers: { ...bearer(), 'content-type': 'application/json' },
      chunks: ['{"secrets":', '["clouds"]}'],
    });
    expect(small.status).toBe(200);
  });

  it.each([
    ['__proto__ at the top', '{"secrets":["clouds"],"__proto__":{"polluted":"yes"}}'],
    ['__proto__ as the only key', '{"__proto__":{"polluted":"yes"}}'],
    [
      'constructor.prototype',
      '{"secrets":["clouds"],"constructor":{"prototype":{"polluted":"yes"}}}',
    ],
    ['__proto__ inside wrap', '{"secrets":["clouds"],"wrap":{"__proto__":{"polluted":"yes"}}}'],
    ['__proto__ as a secret name', '{"secrets":["__proto__"]}'],
    ['deeply nested arrays', `{"secrets":${'['.repeat(5000)}${']'.repeat(5000)}}`],
    ['deeply nested objects', `${'{"a":'.repeat(2500)}1${'}'.repeat(2500)}`],
  ])('answers 400 to a body with %s and pollutes nothing', async (_name, body) => {
    expect(body.length).toBeLessThan(16384);
    const answer = await send(fx.broker.url, '/v1/fetch', {
      method: 'POST',
      headers: { ...bearer(), 'content-type': 'application/json' },
      body,
    });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text)).toMatchObject({ code: 'invalid_request' });
    expect(answer.text).not.toContain(fx.secret.password);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    // The broker is unharmed: the next request is served.
    const next = await send(fx.broker.url, '/v1/secrets/clouds', { headers: bearer() });
    expect(next.status).toBe(200);
  });
});

/**
 * Writes `head` and `body` before reading anything, as Python's urllib does (the socket is
 * paused until the last byte is written, optionally in pieces `paceMs` apart); then
 * reads. What came back, and the socket error if there was one.
 */
async function exchange(
  base: string,
  head: string,
  body?: Buffer,
  paceMs = 0,
): Promise<{ received: string; error: string | undefined }> {
  const { socket, closed } = await rawConnection(base);
  let error: string | undefined;
  socket.removeAllListeners('error');
  socket.on('error', (e: NodeJS.ErrnoException) => {
    error ??= e.code ?? e.message;
  });
  socket.pause();
  socket.write(head);
  const piece = 128 * 1024;
  for (let offset = 0; body && offset < body.length && !socket.destroyed; offset += piece) {
    const written = new Promise<void>((resolve) =>
      socket.write(body.subarray(offset, offset + piece), () => resolve()),
    );
    await written;
    if (paceMs > 0) await new Promise((resolve) => setTimeout(resolve, paceMs));
  }
  socket.resume();
  const result = await closed;
  return { received: result.received, error };
}

const postHead = (headers: Record<string, string | number>) =>
  `POST /v1/fetch HTTP/1.1\r\nHost: x\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;

describe('Expect: 100-continue', () => {
  it('answers 401 to a request without a valid token instead of inviting its body', async () => {
    const { received } = await exchange(
      fx.broker.url,
      postHead({
        'Content-Type': 'application/json',
        'Content-Length': 100,
        Expect: '100-continue',
        Connection: 'close',
      }),
    );
    expect(received).toMatch(/^HTTP\/1\.1 401 /);
    expect(received).not.toContain('100 Continue');
  });

  it('answers 413 to a declared length over the limit instead of inviting the body', async () => {
    const { received } = await exchange(
      fx.broker.url,
      postHead({
        Authorization: `Bearer ${fx.issuer.mint()}`,
        'Content-Type': 'application/json',
        'Content-Length': 2 * 1024 * 1024,
        Expect: '100-continue',
      }),
    );
    expect(received).toMatch(/^HTTP\/1\.1 413 /);
    expect(received).not.toContain('100 Continue');
  });

  it('answers 415 to a body of another type instead of inviting it', async () => {
    const { received } = await exchange(
      fx.broker.url,
      postHead({
        Authorization: `Bearer ${fx.issuer.mint()}`,
        'Content-Type': 'text/plain',
        'Content-Length': 30,
        Expect: '100-continue',
      }),
    );
    expect(received).toMatch(/^HTTP\/1\.1 415 /);
    expect(received).not.toContain('100 Continue');
  });

  it('sends 100 Continue to an acceptable request, then serves its body', async () => {
    const body = JSON.stringify({ secrets: ['clouds'] });
    const { socket, received, closed } = await rawConnection(fx.broker.url);
    socket.write(
      postHead({
        Authorization: `Bearer ${fx.issuer.mint()}`,
        'Content-Type': 'application/json',
        'Content-Length': body.length,
        Expect: '100-continue',
        Connection: 'close',
      }),
    );
    await waitFor(() => received().length > 0);
    expect(received()).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    socket.write(body);
    const done = await closed;
    expect(done.received).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(done.received).toContain(fx.secret.password);
  });
});

describe('a client that sends its whole body before reading', () => {
  const big = Buffer.alloc(2 * 1024 * 1024, 'x');

  /** Each of `rounds` fresh connections (headers built anew) reads `status`, with no socket error. */
  async function expectEveryRound(
    rounds: number,
    headers: () => Record<string, string | number>,
    body: Buffer,
    status: string,
  ): Promise<void> {
    for (let round = 0; round < rounds; round++) {
      const { received, error } = await exchange(fx.broker.url, postHead(headers()), body);
      expect({ round, error, status: received.slice(0, 12) }).toEqual({
        round,
        error: undefined,
        status,
      });
    }
  }

  it('always reads the 413 for a declared 2 MB body (no reset while it is still sending)', async () => {
    await expectEveryRound(
      8,
      () => ({
        Authorization: `Bearer ${fx.issuer.mint()}`,
        'Content-Type': 'application/json',
        'Content-Length': big.length,
        Connection: 'close',
      }),
      big,
      'HTTP/1.1 413',
    );
  });

  it('reads the 413 from a client that needs 1.5 s to send its 2 MB', async () => {
    const { received, error } = await exchange(
      fx.broker.url,
      postHead({
        Authorization: `Bearer ${fx.issuer.mint()}`,
        'Content-Type': 'application/json',
        'Content-Length': big.length,
        Connection: 'close',
      }),
      big,
      90,
    );
    expect({ error, status: received.slice(0, 12) }).toEqual({
      error: undefined,
      status: 'HTTP/1.1 413',
    });
  });

  it('always reads the 413 for a chunked 2 MB body', async () => {
    const chunk = Buffer.concat([
      Buffer.from(`${big.length.toString(16)}\r\n`),
      big,
      Buffer.from('\r\n0\r\n\r\n'),
    ]);
    await expectEveryRound(
      8,
      () => ({
        Authorization: `Bearer ${fx.issuer.mint()}`,
        'Content-Type': 'application/json',
        'Transfer-Encoding': 'chunked',
        Connection: 'close',
      }),
      chunk,
      'HTTP/1.1 413',
    );
  });

  it('always reads the 401 when the token is refused', async () => {
    await expectEveryRound(
      4,
      () => ({
        Authorization: 'Bearer junk',
        'Content-Type': 'application/json',
        'Content-Length': big.length,
        Connection: 'close',
      }),
      big,
      'HTTP/1.1 401',
    );
  });

  it('keeps the connection for the next request once an over-limit body is read', async () => {
    const { socket, received, closed } = await rawConnection(fx.broker.url);
    socket.write(
      postHead({
        Authorization: `Bearer ${fx.issuer.mint()}`,
        'Content-Type': 'application/json',
        'Content-Length': 100 * 1024,
      }),
    );
    socket.write(Buffer.alloc(100 * 1024, 'x'));
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await closed;
    expect(received()).toMatch(/^HTTP\/1\.1 413 [\s\S]*HTTP\/1\.1 200 /);
  });

  it('discards at most a bounded amount, for a bounded time, then closes', async () => {
    const { socket, closed } = await rawConnection(fx.broker.url);
    socket.removeAllListeners('error');
    socket.on('error', () => undefined);
    socket.write(
      postHead({
        Authorization: `Bearer ${fx.issuer.mint()}`,
        'Content-Type': 'application/json',
        'Content-Length': 1024 * 1024 * 1024,
      }),
    );
    // An endless body at full speed: cut off after the discard bound (bytes or 2 s).
    let sent = 0;
    const piece = Buffer.alloc(64 * 1024, 'x');
    const pump = () => {
      while (!socket.destroyed && socket.write(piece)) sent += piece.length;
      if (!socket.destroyed) sent += piece.length;
    };
    socket.on('drain', pump);
    pump();
    const { received, afterMs } = await closed;
    expect(received).toMatch(/^HTTP\/1\.1 413 /);
    expect(afterMs).toBeLessThan(2000 + 1500);
    // The discard bound (4 MiB here) plus what socket buffers on both sides hold.
    expect(sent).toBeLessThan(16 * 1024 * 1024);
  });
});

async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
