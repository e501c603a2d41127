/**
 * The snapshot stream's own bounds, against a local HTTP server standing in for OpenBao's
 * snapshot endpoint (the real endpoint is exercised by test/integration/backup*.test.ts):
 * the size cap, no redirect followed, the token only in its header, errors without bodies.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { OpenBaoError } from '../../../src/openbao/errors.js';
import { createSnapshotTransfer } from '../../../src/openbao/snapshot.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  server = createServer(handler);
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function sink() {
  const stream = new PassThrough();
  stream.resume();
  return stream;
}

describe('raft snapshot streaming', () => {
  it('streams the body, counts and hashes it, sends the token in its header only', async () => {
    let seen: IncomingMessage | undefined;
    const address = await serve((req, res) => {
      seen = req;
      res.writeHead(200, { 'content-type': 'application/gzip' });
      res.end(Buffer.alloc(100_000, 7));
    });
    const transfer = createSnapshotTransfer({
      addresses: [address],
      timeoutMs: 5000,
      maxBytes: 1_000_000,
      token: () => 'zsb-canary-snapshot-token',
    });
    const result = await transfer.saveSnapshot(sink());
    expect(result.bytes).toBe(100_000);
    expect(result.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(seen?.url).toBe('/v1/sys/storage/raft/snapshot');
    expect(seen?.headers['x-vault-token']).toBe('zsb-canary-snapshot-token');
  });

  it('fails a snapshot larger than maxBytes as upstream', async () => {
    const address = await serve((_req, res) => {
      res.writeHead(200);
      res.end(Buffer.alloc(200_000));
    });
    const transfer = createSnapshotTransfer({
      addresses: [address],
      timeoutMs: 5000,
      maxBytes: 50_000,
      token: () => 't',
    });
    await expect(transfer.saveSnapshot(sink())).rejects.toMatchObject({ kind: 'upstream' });
  });

  it('does not follow a redirect, and keeps no upstream text in the error', async () => {
    const address = await serve((_req, res) => {
      res.writeHead(307, { location: 'http://198.51.100.7/v1/sys/storage/raft/snapshot' });
      res.end('{"errors":["zsb-canary-upstream-text"]}');
    });
    const transfer = createSnapshotTransfer({
      addresses: [address],
      timeoutMs: 5000,
      maxBytes: 1000,
      token: () => 't',
    });
    const error = await transfer.saveSnapshot(sink()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenBaoError);
    expect(String((error as Error).message)).not.toContain('zsb-canary');
  });

  it('tries the next address when the first cannot be reached', async () => {
    const address = await serve((_req, res) => {
      res.writeHead(200);
      res.end('abc');
    });
    const transfer = createSnapshotTransfer({
      addresses: ['http://127.0.0.1:1', address],
      timeoutMs: 5000,
      maxBytes: 1000,
      token: () => 't',
    });
    expect((await transfer.saveSnapshot(sink())).bytes).toBe(3);
  });

  it('tells a wrong seal from a corrupt file when a restore is refused', async () => {
    let answer = '';
    const address = await serve((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(answer.includes('autoseal') ? 400 : 500);
        res.end(JSON.stringify({ errors: [answer] }));
      });
    });
    const transfer = createSnapshotTransfer({
      addresses: [address],
      timeoutMs: 5000,
      maxBytes: 1000,
      token: () => 't',
    });
    const { writeFile, mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(tmpdir(), 'zsb-snap-'));
    const file = path.join(dir, 'x.snap');
    await writeFile(file, 'x');
    try {
      answer =
        'could not verify hash file, possibly the snapshot is using a different autoseal key';
      await expect(transfer.restoreSnapshot(file, 't')).rejects.toMatchObject({
        rejection: 'wrong-seal',
      });
      answer = 'failed to read snapshot file: unexpected EOF';
      await expect(transfer.restoreSnapshot(file, 't')).rejects.toMatchObject({
        rejection: 'unreadable',
      });
      answer = 'hash check failed for "state.bin"';
      await expect(transfer.restoreSnapshot(file, 't')).rejects.toMatchObject({
        rejection: 'altered',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
