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
