/**
 * A counting TCP proxy on loopback: the broker is pointed at it instead of OpenBao, so
 * every byte and HTTP request the broker sends to OpenBao passes through here and is
 * counted. Used to prove that rejected tokens never reach OpenBao.
 */
import net from 'node:net';

/** The end of an HTTP/1.1 request line; it cannot occur in a JSON body or a header value. */
const REQUEST_LINE_END = ' HTTP/1.1\r\n';

export interface CountingProxy {
  /** `http://127.0.0.1:PORT`, to use as the broker's OpenBao address. */
  readonly address: string;
  /** Counters since the last reset. */
  counts(): { connections: number; requests: number; bytesToUpstream: number };
  reset(): void;
  close(): Promise<void>;
}

export async function startCountingProxy(upstream: URL): Promise<CountingProxy> {
  if (upstream.hostname !== '127.0.0.1') throw new Error('the proxy only forwards to 127.0.0.1');
  const upstreamPort = Number(upstream.port);
  let connections = 0;
  let requests = 0;
  let bytesToUpstream = 0;
  const sockets = new Set<net.Socket>();

  const server = net.createServer((client) => {
    connections += 1;
    const backend = net.connect({ host: '127.0.0.1', port: upstreamPort });
    sockets.add(client);
    sockets.add(backend);
    // Keep the tail of the previous chunk so a request line split across chunks still counts.
    let carry = '';
    client.on('data', (chunk: Buffer) => {
      bytesToUpstream += chunk.length;
      const text = carry + chunk.toString('latin1');
      requests += text.split(REQUEST_LINE_END).length - 1;
      carry = text.slice(-(REQUEST_LINE_END.length - 1));
    });
    client.pipe(backend);
    backend.pipe(client);
    const drop = () => {
      client.destroy();
      backend.destroy();
      sockets.delete(client);
      sockets.delete(backend);
    };
    client.on('error', drop);
    backend.on('error', drop);
    client.on('close', drop);
    backend.on('close', drop);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy is not on TCP');

  return {
    address: `http://127.0.0.1:${address.port}`,
    counts: () => ({ connections, requests, bytesToUpstream }),
    reset: () => {
      connections = 0;
      requests = 0;
      bytesToUpstream = 0;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
