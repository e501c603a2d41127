/**
 * Verification by restore (openbao-ha.md §2.5): a snapshot is good only if it restores.
 * The file's size and SHA-256 must match its manifest; then it is restored (no -force, so
 * a snapshot of another seal is refused) into a scratch single-node OpenBao with the same
 * static seal key, and the canary written just before the snapshot is read back, with a
 * token of the cluster the snapshot came from (a restore replaces the tokens, §2.4), and
 * compared with the manifest: same KV version, same SHA-256 of the value.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { privateModeProblem } from '../config/private-file.js';
import { OpenBaoError } from '../openbao/errors.js';
import type { SnapshotRestoreRejection } from '../openbao/interface.js';
import { createSnapshotTransfer, SnapshotRestoreError } from '../openbao/snapshot.js';
import { canaryMatches } from './canary.js';
import type { Manifest } from './manifest.js';
import { type ScratchOpenBao, startScratchOpenBao } from './scratch-openbao.js';

export interface VerifySettings {
  readonly binary: string;
  readonly sealKeyFile: string;
  readonly sealKeyId: string;
  /** Whole verification: scratch start, restore, canary read. */
  readonly timeoutMs: number;
  /** Where scratch nodes get their directory (the OS temp dir otherwise). */
  readonly scratchDir?: string | undefined;
}

export type VerifyResult =
  | { readonly ok: true; readonly seconds: number; readonly openbaoVersion: string }
  | {
      readonly ok: false;
      readonly seconds: number;
      readonly stage: 'file' | 'scratch' | 'restore' | 'canary';
      readonly reason: string;
      readonly openbaoVersion: string;
    };

const REJECTIONS: Record<SnapshotRestoreRejection, string> = {
  'wrong-seal':
    'OpenBao refused the restore: the snapshot was taken under another seal key than the configured one',
  unreadable: 'OpenBao refused the restore: the snapshot is truncated or not a snapshot',
  altered: 'OpenBao refused the restore: the snapshot content fails its integrity check',
  'permission-denied': 'OpenBao refused the restore: permission denied',
  rejected: 'OpenBao refused the restore',
};

export async function sha256OfFile(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    bytes += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** The file against its manifest: a truncated or altered copy fails here, before any restore. */
export async function checkFile(file: string, manifest: Manifest): Promise<string | undefined> {
  let actual: { bytes: number; sha256: string };
  try {
    await stat(file);
    actual = await sha256OfFile(file);
  } catch (error) {
    return `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  if (actual.bytes !== manifest.bytes) {
    return `${file} has ${actual.bytes} bytes, its manifest says ${manifest.bytes}: truncated or altered`;
  }
  if (actual.sha256 !== manifest.sha256) {
    return `${file}: SHA-256 differs from its manifest: altered`;
  }
  return undefined;
}

/**
 * Restores `file` into a scratch node and reads the manifest's canary with `sourceToken`.
 * `skipFileCheck` restores even a file whose hash differs (to see what OpenBao says of it).
 */
export async function verifySnapshot(
  file: string,
  manifest: Manifest,
  sourceToken: string,
  settings: VerifySettings,
  options: { readonly skipFileCheck?: boolean; readonly signal?: AbortSignal } = {},
): Promise<VerifyResult> {
  const started = performance.now();
  const deadline = Date.now() + settings.timeoutMs;
  const seconds = () => (performance.now() - started) / 1000;
  let openbaoVersion = '';
  const failed = (stage: 'file' | 'scratch' | 'restore' | 'canary', reason: string) =>
    ({ ok: false, seconds: seconds(), stage, reason, openbaoVersion }) as const;

  if (!options.skipFileCheck) {
    const problem = await checkFile(file, manifest);
    if (problem !== undefined) return failed('file', problem);
  }

  // The seal key is the whole secret store's key: refused unless private, like every secret file.
  try {
    const info = await stat(settings.sealKeyFile);
    const problem = privateModeProblem(
      info.mode,
      settings.sealKeyFile,
      'backup.verify.sealKeyFile',
      info.uid,
    );
    if (problem !== undefined) return failed('scratch', problem);
  } catch (error) {
    return failed(
      'scratch',
      `backup.verify.sealKeyFile: cannot read ${settings.sealKeyFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }

  let node: ScratchOpenBao | undefined;
  try {
    try {
      node = await startScratchOpenBao({
        binary: settings.binary,
        sealKeyFile: settings.sealKeyFile,
        sealKeyId: settings.sealKeyId,
        ...(settings.scratchDir ? { parentDir: settings.scratchDir } : {}),
        startTimeoutMs: Math.max(1000, deadline - Date.now()),
      });
      const { rootToken } = await node.initialize();
      const transfer = createSnapshotTransfer({
        addresses: [node.address],
        timeoutMs: Math.max(1000, deadline - Date.now()),
        maxBytes: Number.MAX_SAFE_INTEGER,
        token: () => rootToken,
      });
      openbaoVersion = (await transfer.clusterInfo()).version;
      try {
        await transfer.restoreSnapshot(file, rootToken);
      } catch (error) {
        if (error instanceof SnapshotRestoreError) {
          return failed('restore', REJECTIONS[error.rejection]);
        }
        return failed('restore', `restore failed: ${(error as Error).message}`);
      }
    } catch (error) {
      if (error instanceof OpenBaoError || error instanceof Error) {
        return failed('scratch', `scratch OpenBao: ${error.message}`);
      }
      throw error;
    }

    // The restored node reloads its keyring and tokens; reads fail until it has.
    const reader = node.reader(sourceToken);
    let last = 'no answer';
    while (Date.now() < deadline) {
      // A shutting-down broker does not wait out the timeout (the node is killed below).
      if (options.signal?.aborted) return failed('canary', 'stopped: the broker is shutting down');
      try {
        const entry = await reader.kvRead(manifest.canary.mount, manifest.canary.path);
        if (entry !== null) {
          const problem = canaryMatches(entry, manifest);
          if (problem === undefined) return { ok: true, seconds: seconds(), openbaoVersion };
          return failed('canary', problem);
        }
        last = 'canary not found';
      } catch (error) {
        last =
          error instanceof OpenBaoError && error.kind === 'permission_denied'
            ? 'permission denied: the verification token is not valid in the snapshot (expired at restore time, or created after the snapshot)'
            : `canary read failed (${error instanceof OpenBaoError ? error.kind : 'error'})`;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return failed('canary', `canary not read back within ${settings.timeoutMs} ms: ${last}`);
  } finally {
    await node?.stop();
  }
}
