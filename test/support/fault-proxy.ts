/**
 * A loopback HTTP proxy that sits between the broker and a real upstream (OpenBao, a Zuul
 * key set) and misbehaves on demand, so tests can check what the broker answers when its
 * upstream fails. The mode switches at run time; the proxy counts the requests it saw and
 * keeps their method and path (never headers or bodies: those carry tokens).
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';

/**
 * A fault; with `times`, only the next that many requests get it and later ones pass through
 * (a transient failure). `refuse` ignores `times`.
 */
export type FaultMode = FaultKind & { readonly times?: number };

type FaultKind =
  /** Forward everything unchanged. */
  | { readonly kind: 'pass' }
  /** Stop listening and drop open connections: new connections get ECONNREFUSED. */
  | { readonly kind: 'refuse' }
  /** Hold each request this long, then forward it (or never answer when it is longer than the caller waits). */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Forward, send the upstream's head and the first `bytes` of its body, then destroy the socket. */
  | { readonly kind: 'reset'; readonly bytes?: number }
  /** Answer this status without asking the upstream (5xx, 429 …), with a small JSON error body. */
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
    }
  /** Answer 200 with a body that is not JSON. */
  | { readonly kind: 'garbage' }
  /**
   * Answer 200 with a valid JSON body of `bytes` bytes: `head`, padding, `tail` (by default a
   * key set document with a huge extra member). `declareLength: false` sends it chunked.
   */
  | {
      readonly kind: 'oversize';
      readonly bytes: number;
      readonly declareLength?: boolean;
      readonly head?: string;
      readonly tail?: string;
    }
  /** Answer 307 to `location`. */
  | { readonly kind: 'redirect'; readonly location: string };

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  /** The mode that handled it. */
  readonly mode: FaultMode['kind'];
}

/** Headers that describe one hop and are not forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

function forwardable(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

export class FaultProxy {
  readonly #server: Server;
  readonly #upstream: URL;
  readonly #port: number;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #mode: FaultMode = { kind: 'pass' };
  #remaining: number | undefined;
  #seen: SeenRequest[] = [];
  #connections = 0;
  #closed = false;

  private constructor(server: Server, upstream: URL, port: number) {
    this.#server = server;
    this.#upstream = upstream;
    this.#port = port;
  }

  /** Listens on a free loopback port in front of `upstream` (an http:// origin). */
  static async start(upstream: string): Promise<FaultProxy> {
    const target = new URL(upstream);
    if (target.protocol !== 'http:') throw new Error('the fault proxy forwards to http only');
    let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
      res.writeHead(503).end();
    };
    const server = createServer((req, res) => handler(req, res));
    await listen(server, 0);
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy is not on TCP');
    const proxy = new FaultProxy(server, target, address.port);
    server.on('connection', (socket) => proxy.#track(socket));
    handler = (req, res) => proxy.#handle(req, res);
    return proxy;
  }

  /** `http://127.0.0.1:PORT`: give this to the broker instead of the upstream's address. */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get mode(): FaultMode {
    return this.#mode;
  }

  /** How many requests reached the proxy (refused connections never do). */
  get requests(): number {
    return this.#seen.length;
  }

  /** How many connections the proxy accepted since it started. */
  get connections(): number {
    return this.#connections;
  }

  /** Method and path of every request seen, oldest first. */
  get seen(): readonly SeenRequest[] {
    return [...this.#seen];
  }

  /** Forgets the requests seen so far. */
  resetCount(): void {
    this.#seen = [];
  }

  /** Switches the mode; from or to `refuse` this closes or reopens the listener on the same port. */
  async setMode(mode: FaultMode): Promise<void> {
    if (this.#closed) throw new Error('the fault proxy is closed');
    const wasRefusing = this.#mode.kind === 'refuse';
    this.#mode = mode;
    this.#remaining = mode.times;
    if (mode.kind === 'refuse' && !wasRefusing) {
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      this.#dropConnections();
      await closed;
    } else if (mode.kind !== 'refuse' && wasRefusing) {
      await listen(this.#server, this.#port);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    if (!this.#server.listening) {
      this.#dropConnections();
      return;
    }
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#dropConnections();
    await closed;
  }

  #track(socket: Socket): void {
    this.#connections += 1;
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  #dropConnections(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    let mode: FaultMode = this.#mode;
    if (this.#remaining !== undefined) {
      if (this.#remaining <= 0) mode = { kind: 'pass' };
      else this.#remaining -= 1;
    }
    this.#seen.push({ method: req.method ?? '', path: req.url ?? '', mode: mode.kind });
    switch (mode.kind) {
      case 'pass':
      case 'refuse': // a request already parsed on a connection accepted before the switch
        this.#forward(req, res);
        return;
      case 'delay': {
        // Read the body now so it can be forwarded later; give up if the caller does.
        const body = collect(req);
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          if (res.destroyed || res.socket === null) return;
          void body.then((bytes) => this.#forward(req, res, bytes));
        }, mode.ms);
        this.#timers.add(timer);
        res.once('close', () => {
          clearTimeout(timer);
          this.#timers.delete(timer);
        });
        return;
      }
      case 'reset':
        this.#forward(req, res, undefined, mode.bytes ?? 8);
        return;
      case 'status': {
        const payload = JSON.stringify({ errors: [`fault proxy answered ${mode.status}`] });
        drain(req, () =>
          res
            .writeHead(mode.status, {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(payload),
              ...mode.headers,
            })
            .end(payload),
        );
        return;
      }
      case 'garbage': {
        const payload = '<html><body>502 Bad Gateway (not JSON at all</body></html>\n';
        drain(req, () =>
          res
            .writeHead(200, {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(payload),
            })
            .end(payload),
        );
        return;
      }
      case 'oversize':
        drain(req, () =>
          sendOversize(res, mode.bytes, {
            declareLength: mode.declareLength ?? true,
            head: mode.head ?? '{"keys":[],"pad":"',
            tail: mode.tail ?? '"}',
          }),
        );
        return;
      case 'redirect':
        drain(req, () => res.writeHead(307, { location: mode.location }).end());
        return;
    }
  }

  /** Forwards to the upstream; with `cutAfter`, sends only that much of the body and resets. */
  #forward(
    req: IncomingMessage,
    res: ServerResponse,
    body?: Promise<Buffer> | Buffer,
    cutAfter?: number,
  ): void {
    const outgoing = httpRequest(
      {
        protocol: this.#upstream.protocol,
        hostname: this.#upstream.hostname,
        port: this.#upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...forwardable(req.headers), host: this.#upstream.host },
      },
      (upstreamRes) => {
        if (cutAfter === undefined) {
          res.writeHead(upstreamRes.statusCode ?? 502, forwardable(upstreamRes.headers));
          upstreamRes.pipe(res);
          return;
        }
        void collect(upstreamRes).then((full) => {
          // Promise the whole body, deliver part of it, then cut the connection.
          const headers = forwardable(upstreamRes.headers);
          headers['content-length'] = String(Math.max(full.length, cutAfter + 1));
          res.writeHead(upstreamRes.statusCode ?? 502, headers);
          res.write(full.subarray(0, Math.min(cutAfter, Math.max(0, full.length - 1))), () => {
            res.socket?.destroy();
          });
        });
      },
    );
    outgoing.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.socket?.destroy();
    });
    res.once('close', () => {
      if (!outgoing.writableFinished) outgoing.destroy();
    });
    if (body === undefined) {
      req.pipe(outgoing);
    } else {
      void Promise.resolve(body).then((bytes) => outgoing.end(bytes));
    }
  }
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function collect(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', () => resolve(Buffer.concat(chunks)));
  });
}

/** Reads and discards the request body before answering, so keep-alive stays usable. */
function drain(req: IncomingMessage, then: () => void): void {
  req.resume();
  if (req.readableEnded) then();
  else req.once('end', then);
}

/** `head`, `x` padding, `tail`: valid JSON when they are, just far too large. */
function sendOversize(
  res: ServerResponse,
  bytes: number,
  shape: { declareLength: boolean; head: string; tail: string },
): void {
  const { declareLength, head, tail } = shape;
  const padding = Math.max(0, bytes - head.length - tail.length);
  res.writeHead(200, {
    'content-type': 'application/json',
    ...(declareLength ? { 'content-length': String(head.length + padding + tail.length) } : {}),
  });
  res.write(head);
  const chunk = 'x'.repeat(64 * 1024);
  let left = padding;
  const pump = (): void => {
    while (left > 0) {
      if (res.destroyed) return;
      const piece = left >= chunk.length ? chunk : chunk.slice(0, left);
      left -= piece.length;
      if (!res.write(piece)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end(tail);
  };
  pump();
}
