/**
 * The backup directory on disk. Every file appears under its final name only when complete:
 * it is written under a temporary name (`.zsb-tmp-…`), fsynced, renamed, and the directory
 * fsynced, so a crash (SIGKILL, power loss) leaves at most a temporary file, which no
 * listing shows and the next run removes. A snapshot counts only once its manifest exists,
 * and the manifest is written after the snapshot is in place.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import {
  type Manifest,
  ManifestError,
  manifestNameOf,
  parseManifest,
  SNAPSHOT_SUFFIX,
} from './manifest.js';

export const TEMP_PREFIX = '.zsb-tmp-';
/** Temporary files older than this belong to a run that died; a live run is far shorter. */
export const STALE_TEMP_MS = 6 * 3600_000;
/** A manifest is small; a bigger file is not one of ours. */
const MAX_MANIFEST_BYTES = 64 * 1024;

export class BackupDirectoryError extends Error {
  override readonly name = 'BackupDirectoryError';
}

function describe(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code ?? 'error';
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A file being written; `commit()` makes it appear under `finalName`, `abort()` removes it. */
export interface PendingFile {
  readonly stream: Writable;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export async function createPending(dir: string, finalName: string): Promise<PendingFile> {
  const temp = path.join(dir, `${TEMP_PREFIX}${randomBytes(6).toString('hex')}-${finalName}`);
  // `wx`: never follow or reuse an existing name.
  const stream = createWriteStream(temp, { flags: 'wx', mode: 0o600 });
  try {
    await new Promise<void>((resolve, reject) => {
      stream.once('ready', () => resolve());
      stream.once('error', reject);
    });
  } catch (error) {
    throw new BackupDirectoryError(`cannot create a file in ${dir} (${describe(error)})`);
  }
  const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
  let done = false;
  return {
    stream,
    async commit() {
      done = true;
      try {
        await closed;
        // fsync through a second descriptor: it flushes the file, whichever fd wrote it.
        const handle = await open(temp, 'r');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(temp, path.join(dir, finalName));
        await fsyncDir(dir);
      } catch (error) {
        await rm(temp, { force: true }).catch(() => undefined);
        throw new BackupDirectoryError(
          `cannot write ${path.join(dir, finalName)} (${describe(error)})`,
        );
      }
    },
    async abort() {
      if (done) return;
      done = true;
      stream.destroy();
      await closed;
      await rm(temp, { force: true }).catch(() => undefined);
    },
  };
}

/** Writes a whole small file atomically (temporary name, fsync, rename, fsync dir). */
export async function writeFileAtomic(dir: string, name: string, text: string): Promise<void> {
  const pending = await createPending(dir, name);
  try {
    await new Promise<void>((resolve, reject) => {
      pending.stream.once('error', reject);
      pending.stream.end(text, () => resolve());
    });
  } catch (error) {
    await pending.abort();
    throw new BackupDirectoryError(`cannot write ${path.join(dir, name)} (${describe(error)})`);
  }
  await pending.commit();
}

export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  await writeFileAtomic(
    dir,
    manifestNameOf(manifest.file),
    `${JSON.stringify(manifest, null, 2)}\n`,
  );
}

export async function readManifestOf(snapshotPath: string): Promise<Manifest> {
  const file = manifestNameOf(snapshotPath);
  let text: string;
  try {
    const info = await stat(file);
    if (info.size > MAX_MANIFEST_BYTES) throw new ManifestError(`${file}: too large`);
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof ManifestError) throw error;
    throw new ManifestError(`${file}: cannot read (${describe(error)})`);
  }
  const manifest = parseManifest(text, file);
  if (manifest.file !== path.basename(snapshotPath)) {
    throw new ManifestError(`${file}: names another snapshot (${manifest.file})`);
  }
  return manifest;
}

export interface ListedSnapshot {
  readonly path: string;
  readonly manifest: Manifest;
}

export interface DirectoryListing {
  readonly snapshots: readonly ListedSnapshot[];
  /** Snapshot files without a (valid) manifest: never counted as backups. */
  readonly incomplete: readonly { readonly path: string; readonly reason: string }[];
}

/** What the directory holds, newest first. Temporary files are not listed. */
export async function listDirectory(dir: string): Promise<DirectoryListing> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw new BackupDirectoryError(`cannot read backup directory ${dir} (${describe(error)})`);
  }
  const snapshots: ListedSnapshot[] = [];
  const incomplete: { path: string; reason: string }[] = [];
  for (const name of names) {
    if (name.startsWith(TEMP_PREFIX) || !name.endsWith(SNAPSHOT_SUFFIX)) continue;
    const file = path.join(dir, name);
    try {
      snapshots.push({ path: file, manifest: await readManifestOf(file) });
    } catch (error) {
      incomplete.push({ path: file, reason: (error as Error).message });
    }
  }
  snapshots.sort((a, b) => b.manifest.takenAt.localeCompare(a.manifest.takenAt));
  return { snapshots, incomplete };
}

/** Removes temporary files a dead run left behind (only old ones: a live run may own one). */
export async function removeStaleTemporaries(dir: string, now: number): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    const file = path.join(dir, name);
    const info = await stat(file).catch(() => undefined);
    if (info && now - info.mtimeMs > STALE_TEMP_MS) {
      await rm(file, { force: true });
      removed += 1;
    }
  }
  return removed;
}

/** Deletes a backup: the manifest first, so that a half-done deletion never looks complete. */
export async function deleteSnapshot(snapshotPath: string): Promise<void> {
  await rm(manifestNameOf(snapshotPath), { force: true });
  await rm(snapshotPath, { force: true });
  await fsyncDir(path.dirname(snapshotPath)).catch(() => undefined);
}
