/**
 * Raft snapshots, streamed: `GET sys/storage/raft/snapshot` into a file and
 * `POST sys/storage/raft/snapshot` from one. A snapshot is far bigger than the 4 MiB the
 * JSON transport (transport.ts) reads into memory, so it has a path of its own here, with
 * its own bound (`maxBytes`), the same rules otherwise: only the configured addresses, no
 * redirect followed, the token per call in its header, and failures as OpenBaoError whose
 * text holds no upstream body or token.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { kindForStatus, OpenBaoError } from './errors.js';
import type { ClusterInfo, RaftSnapshots, SnapshotRestoreRejection } from './interface.js';
import { type OpenBaoTlsFiles, readTlsFiles } from './tls-files.js';

export interface SnapshotTransferOptions {
  /** Tried in order for the download (any node can save a snapshot); the first for uploads. */
  readonly addresses: readonly string[];
  /** Deadline of one whole transfer. */
  readonly timeoutMs: number;
  /** Largest snapshot accepted; a bigger one fails as `upstream` and is not kept. */
  readonly maxBytes: number;
  readonly namespace?: string | undefined;
  readonly tls?: OpenBaoTlsFiles | undefined;
  /** The token a download runs with (the broker's own, asked for on every call). */
  readonly token: () => string;
}

const SNAPSHOT_PATH = '/v1/sys/storage/raft/snapshot';
/** Error bodies are read (to tell a wrong seal from a corrupt file), never kept whole. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

class SnapshotTooLarge extends Error {}

/** What OpenBao's restore said, in our words (openbao-ha.md §2.4 lists the texts). */
function rejectionOf(status: number, body: string): SnapshotRestoreRejection {
  if (body.includes('different autoseal key') || body.includes('different set of unseal keys'))
    return 'wrong-seal';
  if (body.includes('unexpected EOF') || body.includes('failed to read snapshot'))
    return 'unreadable';
  if (body.includes('hash check failed') || body.includes('checksum')) return 'altered';
  if (status === 403) return 'permission-denied';
  return 'rejected';
}

export class SnapshotRestoreError extends OpenBaoError {
  readonly rejection: SnapshotRestoreRejection;
  constructor(status: number, rejection: SnapshotRestoreRejection) {
    super(
      'raft snapshot restore',
      status === 0 ? 'unavailable' : kindForStatus(status, []),
      status,
    );
    this.rejection = rejection;
    this.message = `OpenBao raft snapshot restore failed: ${rejection}${status ? ` (HTTP ${status})` : ''}`;
  }
}

export function createSnapshotTransfer(options: SnapshotTransferOptions): RaftSnapshots {
  if (options.addresses.length === 0) throw new Error('at least one OpenBao address is required');
  const tls = options.tls === undefined ? {} : readTlsFiles(options.tls);

  /** One request to `address`; resolves with the response once its head arrived. */
  function open(
    address: string,
    method: 'GET' | 'POST',
    path: string,
    headers: Record<string, string | number>,
    signal: AbortSignal,
  ): { request: http.ClientRequest; response: Promise<http.IncomingMessage> } {
    const url = new URL(path, address.endsWith('/') ? address : `${address}/`);
    const secure = url.protocol === 'https:';
    if (options.namespace) headers['X-Vault-Namespace'] = options.namespace;
    const request = (secure ? https : http).request({
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port,
      path: url.pathname + url.search,
      method,
      headers,
      // One connection per transfer, to exactly this address: no agent pool, no proxy.
      agent: false,
      signal,
      ...(secure ? tls : {}),
    });
    const response = new Promise<http.IncomingMessage>((resolve, reject) => {
      request.once('response', resolve);
      request.once('error', reject);
    });
    return { request, response };
  }

  async function readErrorBody(response: http.IncomingMessage): Promise<string> {
    let text = '';
    for await (const chunk of response) {
      if (text.length < MAX_ERROR_BODY_BYTES) text += (chunk as Buffer).toString('utf8');
    }
    return text.slice(0, MAX_ERROR_BODY_BYTES);
  }

  function classify(operation: string, error: unknown, signal: AbortSignal): OpenBaoError {
    if (error instanceof OpenBaoError) return error;
    if (error instanceof SnapshotTooLarge) return new OpenBaoError(operation, 'upstream', 200);
    if (signal.aborted) return new OpenBaoError(operation, 'timeout', 0);
    return new OpenBaoError(operation, 'unavailable', 0);
  }

  return {
    async saveSnapshot(destination: Writable) {
      let lastError: OpenBaoError | undefined;
      for (const address of options.addresses) {
        const signal = AbortSignal.timeout(options.timeoutMs);
        let started = false;
        // A failure of the destination (a full disk) is the caller's, not OpenBao's: rethrown as is.
        let destinationError: unknown;
        // Whichever side failed first: pipeline() then destroys the other side with the error.
        let firstFailure: 'upstream' | 'destination' | undefined;
        const onDestinationError = (error: unknown) => {
          destinationError ??= error;
          firstFailure ??= 'destination';
        };
        destination.once('error', onDestinationError);
        try {
          const { request, response } = open(
            address,
            'GET',
            SNAPSHOT_PATH.slice(1),
            { 'X-Vault-Token': options.token() },
            signal,
          );
          request.end();
          const res = await response;
          const status = res.statusCode ?? 0;
          if (status !== 200) {
            res.resume();
            throw new OpenBaoError('raft snapshot', kindForStatus(status, []), status);
          }
          started = true;
          const hash = createHash('sha256');
          let bytes = 0;
          const count = new Transform({
            transform(chunk: Buffer, _encoding, callback) {
              bytes += chunk.length;
              if (bytes > options.maxBytes) {
                callback(new SnapshotTooLarge());
                return;
              }
              hash.update(chunk);
              callback(null, chunk);
            },
          });
          res.once('error', () => {
            firstFailure ??= 'upstream';
          });
          count.once('error', () => {
            firstFailure ??= 'upstream';
          });
          await pipeline(res, count, destination, { signal });
          return { bytes, sha256: hash.digest('hex') };
        } catch (error) {
          if (firstFailure === 'destination' && !signal.aborted) {
            throw destinationError;
          }
          lastError = classify('raft snapshot', error, signal);
          // Bytes already went to the destination: another address cannot append to them.
          if (started || (lastError.kind !== 'unavailable' && lastError.kind !== 'sealed'))
            throw lastError;
        } finally {
          destination.off('error', onDestinationError);
        }
      }
      throw lastError ?? new OpenBaoError('raft snapshot', 'unavailable', 0);
    },

    async restoreSnapshot(file, token, address) {
      const target = address ?? options.addresses[0] ?? '';
      const size = (await stat(file)).size;
      const signal = AbortSignal.timeout(options.timeoutMs);
      let res: http.IncomingMessage;
      try {
        const { request, response } = open(
          target,
          'POST',
          SNAPSHOT_PATH.slice(1),
          {
            'X-Vault-Token': token,
            'content-type': 'application/octet-stream',
            'content-length': size,
          },
          signal,
        );
        // A restore replaces everything: sent once, never repeated.
        const sent = pipeline(createReadStream(file), request, { signal }).catch(() => undefined);
        res = await response;
        await sent;
      } catch (error) {
        throw classify('raft snapshot restore', error, signal);
      }
      const status = res.statusCode ?? 0;
      if (status === 200 || status === 204) {
        res.resume();
        return;
      }
      const body = await readErrorBody(res).catch(() => '');
      throw new SnapshotRestoreError(status, rejectionOf(status, body));
    },

    async clusterInfo(): Promise<ClusterInfo> {
      let lastError: OpenBaoError | undefined;
      for (const address of options.addresses) {
        const signal = AbortSignal.timeout(Math.min(options.timeoutMs, 10_000));
        try {
          // Any unsealed node answers: a standby's 429 becomes 200 with standbyok.
          const { request, response } = open(
            address,
            'GET',
            'v1/sys/health?standbyok=true',
            {},
            signal,
          );
          request.end();
          const res = await response;
          const text = await readErrorBody(res);
          if (res.statusCode !== 200) {
            throw new OpenBaoError('health', kindForStatus(res.statusCode ?? 0, []), 0);
          }
          const body = JSON.parse(text) as Record<string, unknown>;
          const str = (v: unknown) => (typeof v === 'string' ? v : '');
          return {
            clusterId: str(body.cluster_id),
            clusterName: str(body.cluster_name),
            version: str(body.version),
          };
        } catch (error) {
          lastError = classify('health', error, signal);
        }
      }
      throw lastError ?? new OpenBaoError('health', 'unavailable', 0);
    },
  };
}

/**
 * `PUT sys/init` with one recovery share (an auto-unsealed node: the static seal); returns
 * the new root token. Used only on a scratch node the broker started itself (verification,
 * restore drills): the root token never leaves the process that holds it.
 */
export async function initializeRecoveryOnly(
  address: string,
  timeoutMs: number,
): Promise<{ readonly rootToken: string }> {
  let res: Response;
  try {
    res = await fetch(new URL('v1/sys/init', `${address}/`), {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ recovery_shares: 1, recovery_threshold: 1 }),
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch {
    throw new OpenBaoError('init', 'unavailable', 0);
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (res.status !== 200 || typeof body.root_token !== 'string') {
    throw new OpenBaoError('init', kindForStatus(res.status, []), res.status);
  }
  return { rootToken: body.root_token };
}
