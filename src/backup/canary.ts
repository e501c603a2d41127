/**
 * The backup canary: a fresh random value the broker writes to
 * `{stateMount}/{statePrefix}/backup/canary` right before each snapshot. A restore of the
 * snapshot must hand back exactly that KV version with exactly that value. The manifest
 * keeps the path, the version and a SHA-256 of the value; the value itself exists only in
 * OpenBao (and, barrier-encrypted, in the snapshot).
 *
 * The value starts with `zsb-canary-backup-`: a leak scanner that looks for the project's
 * canary prefix (the test suite's does) finds it in any log line it reaches.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { KvEntry, KvWriter } from '../openbao/interface.js';
import type { Manifest } from './manifest.js';

export const CANARY_VALUE_PREFIX = 'zsb-canary-backup-';

export function canaryPath(prefix: string): string {
  return `${prefix}/backup/canary`;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export interface WrittenCanary {
  readonly mount: string;
  readonly path: string;
  readonly version: number;
  readonly valueSha256: string;
}

export async function writeCanary(
  openbao: KvWriter,
  mount: string,
  prefix: string,
  backupId: string,
  at: Date,
): Promise<WrittenCanary> {
  const value = `${CANARY_VALUE_PREFIX}${randomBytes(24).toString('hex')}`;
  const path = canaryPath(prefix);
  const { version } = await openbao.kvWrite(mount, path, {
    value,
    backupId,
    writtenAt: at.toISOString(),
  });
  return { mount, path, version, valueSha256: sha256Hex(value) };
}

/** Undefined when the restored canary is the manifest's; else a reason without the value. */
export function canaryMatches(entry: KvEntry, manifest: Manifest): string | undefined {
  const value = entry.data.value;
  if (entry.version !== manifest.canary.version) {
    return `restored canary is version ${entry.version}, the manifest expects ${manifest.canary.version}`;
  }
  if (typeof value !== 'string' || sha256Hex(value) !== manifest.canary.valueSha256) {
    return 'restored canary value differs from the manifest (SHA-256 mismatch)';
  }
  if (entry.data.backupId !== manifest.id) {
    return 'restored canary belongs to another backup';
  }
  return undefined;
}
