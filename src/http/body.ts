/**
 * Reads a request body as text, at most `maxBytes`, straight from Node's IncomingMessage
 * when the app runs under @hono/node-server (`c.env.incoming`). The Web `Request` that
 * hono's own body helpers build costs @hono/node-server a full Request with an
 * AbortSignal and a ReadableStream per request, more than the rest of a fetch's handling
 * here. The bound holds for chunked bodies too: bytes are counted as they arrive.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';

export type BodyText = { readonly ok: true; readonly text: string } | { readonly ok: false };

function incomingOf(c: Context): IncomingMessage | undefined {
  const env = c.env as { incoming?: IncomingMessage } | undefined;
  const incoming = env?.incoming;
  return incoming !== undefined && typeof incoming.on === 'function' && !incoming.readableEnded
    ? incoming
    : undefined;
}

export async function readBodyText(c: Context, maxBytes: number): Promise<BodyText> {
  const declared = Number(c.req.header('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) return { ok: false };
  const incoming = incomingOf(c);
  if (incoming === undefined) {
    // In-process requests (tests: app.request) carry their body in the Request itself.
    const text = await c.req.text();
    return Buffer.byteLength(text, 'utf8') > maxBytes ? { ok: false } : { ok: true, text };
  }
  return new Promise<BodyText>((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const done = (result: BodyText) => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('aborted', onError);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBytes) {
        // Stop buffering; what is left is read and dropped by Node (or the socket closes).
        done({ ok: false });
        incoming.resume();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => done({ ok: true, text: Buffer.concat(chunks, received).toString('utf8') });
    const onError = () => done({ ok: false });
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('aborted', onError);
  });
}
