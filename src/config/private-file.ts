/**
 * Files that hold a secret the configuration names (the OpenBao token, the AppRole
 * secret-id, the audit HMAC key, TLS private keys) must be accessible to their owner only,
 * as OpenSSH insists for private keys: a token that every local user can read is not a
 * secret. They are read through one descriptor, so the mode checked is the mode of the
 * content read (a symlink, as Kubernetes volumes use, is judged by its target).
 *
 * One exception, PostgreSQL's rule for `ssl_key_file`: a file owned by root may also be
 * readable (not writable) by its group. Only root can have made it so, for a group root
 * chose; it is how Kubernetes mounts a Secret with `fsGroup` (root:fsGroup, mode 0440 from
 * `defaultMode: 0400`), so such volumes work as mounted and their updates are seen.
 */
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';

/** Not private enough (privateModeProblem); the message names key, path, mode and the fix. */
export class PrivateFileError extends Error {
  override readonly name = 'PrivateFileError';
}

/**
 * Why a file of `mode` owned by `ownerUid` is not private enough for the secret file at
 * `key`, or undefined. Without `ownerUid` the file counts as not owned by root.
 */
export function privateModeProblem(
  mode: number,
  file: string,
  key: string,
  ownerUid?: number,
): string | undefined {
  const permissions = mode & 0o777;
  const forbidden = ownerUid === 0 ? 0o037 : 0o077;
  if ((permissions & forbidden) === 0) return undefined;
  const octal = `0${permissions.toString(8).padStart(3, '0')}`;
  return (
    `${key}: ${file} is accessible to group or others (mode ${octal}) but holds a secret; ` +
    `make it private to the broker's user: chmod 600 ${file} ` +
    '(or, owned by root, readable by a group at most: chmod 440)'
  );
}

/**
 * Reads a secret file, refusing it (PrivateFileError) when group or others may access it
 * (group read allowed when root owns it), judged by the owner and mode of the file read.
 */
export function readPrivateFileSync(file: string, key: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const info = fstatSync(fd);
    const problem = privateModeProblem(info.mode, file, key, info.uid);
    if (problem !== undefined) throw new PrivateFileError(problem);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** As readPrivateFileSync, without blocking (reloads while serving). */
export async function readPrivateFile(file: string, key: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const info = await handle.stat();
    const problem = privateModeProblem(info.mode, file, key, info.uid);
    if (problem !== undefined) throw new PrivateFileError(problem);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}
