/**
 * Reads a request body as text, at most `maxBytes`, straight from Node's IncomingMessage
 * when the app runs under @hono/node-server (`c.env.incoming`). The Web `Request` that
 * hono's own body helpers build costs @hono/node-server a full Request with an
 * AbortSignal and a ReadableStream per request, more than the rest of a fetch's handling
 * here. The bound holds for chunked bodies too: bytes are counted as they arrive.
 *
 * `Expect: 100-continue` is answered here, when a route starts reading: main.ts keeps Node
 * from sending `100 Continue` on arrival, so a request refused before its body is read
 * (401, 413 by declared length, 415) gets its final answer instead of an invitation.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'hono';

export type BodyText = { readonly ok: true; readonly text: string } | { readonly ok: false };

function incomingOf(c: Context): IncomingMessage | undefined {
  const env = c.env as { incoming?: IncomingMessage } | undefined;
  const incoming = env?.incoming;
  return incoming !== undefined && typeof incoming.on === 'function' && !incoming.readableEnded
    ? incoming
    : undefined;
}

function outgoingOf(c: Context): ServerResponse | undefined {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  return outgoing !== undefined && typeof outgoing.writeContinue === 'function'
    ? outgoing
    : undefined;
}

/** A body left unread is dropped up to this many bytes (or 4 × the body limit, if more)… */
const DISCARD_MIN_BYTES = 4 * 1024 * 1024;
/** …and for at most this long, then the connection is closed. */
const DISCARD_MS = 2000;

/**
 * After the answer to a request whose body is still arriving (refused before or while
 * reading it): reads and drops the rest, bounded in bytes and time, before the connection
 * closes. Closing at once makes the kernel reset a connection whose client is still
 * sending, and a client that sends its whole body before reading (Python's urllib) then
 * sees EPIPE or ECONNRESET instead of the 413 or 401. When Node closes the connection
 * after the answer (the client sent `Connection: close`, or a `100 Continue` it expected
 * was not sent), it only half-closes it until the rest is dropped: a lingering close (RFC
 * 9112, section 9.6). Past the bound the connection is closed once the answer is out;
 * memory stays bounded either way (nothing is kept), and so does the time a client can
 * hold the connection with a body nobody reads.
 */
export function discardUnreadBody(c: Context, maxBodyBytes: number): void {
  const incoming = incomingOf(c);
  // `complete`: the whole message has arrived (what is left in Node's buffer, Node drops).
  if (incoming === undefined || incoming.complete || incoming.destroyed) return;
  const socket = incoming.socket;
  const outgoing = outgoingOf(c);
  const limit = Math.max(4 * maxBodyBytes, DISCARD_MIN_BYTES);
  let discarded = 0;
  let closeWanted = false;
  // Node calls destroySoon after an answer that ends the connection: half-close instead.
  const destroySoon = socket.destroySoon;
  socket.destroySoon = () => {
    closeWanted = true;
    if (socket.writable) socket.end();
  };
  const settle = (cut: boolean) => {
    clearTimeout(timer);
    incoming.off('data', onData);
    incoming.off('end', finished);
    incoming.off('error', finished);
    incoming.off('close', finished);
    socket.destroySoon = destroySoon;
    if (!cut) {
      if (closeWanted) socket.destroy();
      return;
    }
    incoming.pause();
    if (outgoing !== undefined && !outgoing.writableFinished) {
      outgoing.once('close', () => socket.destroy());
    } else {
      socket.destroy();
    }
  };
  const finished = () => settle(false);
  const onData = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > limit) settle(true);
  };
  const timer = setTimeout(() => settle(true), DISCARD_MS);
  timer.unref();
  incoming.on('data', onData);
  incoming.once('end', finished);
  incoming.once('error', finished);
  incoming.once('close', finished);
  incoming.resume();
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
  if (incoming.headers.expect?.toLowerCase() === '100-continue') outgoingOf(c)?.writeContinue();
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
        // Stop buffering; what is left is dropped, within bounds, by discardUnreadBody.
        done({ ok: false });
        incoming.pause();
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

/** `application/json`, optionally with `charset=utf-8` (RFC 8259 knows no other encoding). */
export function isJsonMediaType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [type = '', ...parameters] = header.split(';');
  if (type.trim().toLowerCase() !== 'application/json') return false;
  return parameters.every((parameter) => {
    const [name = '', value = ''] = parameter.split('=').map((part) => part.trim().toLowerCase());
    return name === 'charset' && (value === 'utf-8' || value === '"utf-8"');
  });
}

export type JsonBody =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly reason: 'malformed' | 'duplicate key' };

/**
 * JSON.parse, refusing objects that repeat a key at any depth: JSON.parse keeps the last
 * one silently, so `{"secrets":["a"],"secrets":["b"]}` would mean whatever a reader of the
 * first key did not expect. The scan runs only on text JSON.parse accepted, so it needs to
 * tell strings from structure and nothing else; its stack is an array (no recursion), and
 * the text is already bounded by the body limit.
 */
export function parseJsonBody(text: string): JsonBody {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  /** One entry per open container: the keys of an object so far, or null for an array. */
  const open: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const keys = open[open.length - 1];
      if (expectKey && keys) {
        // Decoded, so `"secr\u0065ts"` and `"secrets"` are the same key.
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (keys.has(key)) return { ok: false, reason: 'duplicate key' };
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (ch === '{') {
      open.push(new Set());
      expectKey = true;
    } else if (ch === '[') {
      open.push(null);
      expectKey = false;
    } else if (ch === '}' || ch === ']') {
      open.pop();
      expectKey = false;
    } else if (ch === ',') {
      expectKey = open[open.length - 1] instanceof Set;
    }
  }
  return { ok: true, value };
}
