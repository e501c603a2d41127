/**
 * Small file systems for the cluster scenarios that fill a disk (audit-device,
 * leader-full-disk, lagging-follower): a tmpfs mounted over a node's directory (we run as
 * root), a ballast file written until ENOSPC, and the teardown that frees and unmounts them.
 */
import { execFileSync } from 'node:child_process';
import { open, rm } from 'node:fs/promises';
import type { ClusterFixture } from '../../support/raft-cluster.js';

/**
 * Mounts a tmpfs of `size` (e.g. `64m`) on `dir`. Fails loudly if it cannot: the
 * `scenario` would prove nothing on the big disk.
 */
export function mountTmpfs(dir: string, size: string, scenario: string): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  } catch (error) {
    throw new Error(
      `cannot mount a tmpfs for the ${scenario} scenario (needs root): ${(error as Error).message}`,
    );
  }
}

/**
 * Writes `file` in chunks of `chunkBytes` (each byte `fillByte`), at most `maxChunks` of
 * them, until the file system under it is full (ENOSPC); resolves with the bytes written.
 */
export async function fillFileSystem(
  file: string,
  chunkBytes: number,
  maxChunks: number,
  fillByte: number,
): Promise<number> {
  const chunk = Buffer.alloc(chunkBytes, fillByte);
  const handle = await open(file, 'w');
  let written = 0;
  try {
    for (let i = 0; i < maxChunks; i++) {
      try {
        written += (await handle.write(chunk)).bytesWritten;
      } catch {
        break;
      }
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
  return written;
}

/**
 * The teardown of a scenario with tmpfs mounts: removes the ballast (if any), closes the
 * fixture, unmounts every `mounted` directory (lazily if busy), then removes the cluster's
 * directory.
 */
export async function closeTmpfsFixture(
  fixture: ClusterFixture | undefined,
  mounted: readonly string[],
  ballast: string,
): Promise<void> {
  if (ballast) await rm(ballast, { force: true });
  await fixture?.close();
  for (const dir of mounted) {
    try {
      execFileSync('umount', [dir]);
    } catch {
      execFileSync('umount', ['-l', dir]);
    }
  }
  if (fixture) await rm(fixture.cluster.dir, { recursive: true, force: true });
}
