/**
 * Reading a directory of YAML files: the only file I/O of the policy module, kept
 * apart so that parsing and deciding stay pure and testable from strings.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SourceFile } from './source.js';
import { MAX_FILE_BYTES } from './source.js';
import type { PolicyProblem } from './types.js';

const YAML_FILE = /\.ya?ml$/;

export interface DirectoryContents {
  readonly files: readonly SourceFile[];
  readonly problems: readonly PolicyProblem[];
}

function errorCode(e: unknown): string {
  return e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : 'unknown error';
}

/** A problem about the directory itself: line 0 means "no position". */
function directoryProblem(dir: string, message: string): DirectoryContents {
  return { files: [], problems: [{ file: dir, line: 0, column: 0, message }] };
}

/**
 * Every top-level `*.yaml`/`*.yml` regular file (symlinks followed, as in a mounted
 * Kubernetes ConfigMap), sorted by name so load order and "first definition" are
 * stable. Dotfiles (editor backups, ConfigMap internals) and subdirectories are
 * skipped. `namePrefix` is prepended to the names used in problems.
 */
export async function readYamlDirectory(
  dir: string,
  what: string,
  namePrefix = '',
): Promise<DirectoryContents> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    const code = errorCode(e);
    if (code === 'ENOENT') return directoryProblem(dir, `${what} does not exist`);
    if (code === 'ENOTDIR') return directoryProblem(dir, `${what} is not a directory`);
    return directoryProblem(dir, `${what} cannot be read (${code})`);
  }
  const candidates = names
    .filter((n) => YAML_FILE.test(n) && !n.startsWith('.'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const files: SourceFile[] = [];
  const problems: PolicyProblem[] = [];
  for (const entry of candidates) {
    const path = join(dir, entry);
    const name = `${namePrefix}${entry}`;
    try {
      const info = await stat(path);
      if (!info.isFile()) continue;
      if (info.size > MAX_FILE_BYTES) {
        // Checked before reading so a huge file costs no memory.
        problems.push({
          file: name,
          line: 1,
          column: 1,
          message: `file is larger than ${MAX_FILE_BYTES / 1024} KiB`,
        });
        continue;
      }
      files.push({ name, text: await readFile(path) });
    } catch (e) {
      problems.push({
        file: name,
        line: 1,
        column: 1,
        message: `file cannot be read (${errorCode(e)})`,
      });
    }
  }
  if (files.length === 0 && problems.length === 0) {
    return directoryProblem(dir, `${what} holds no *.yaml or *.yml files`);
  }
  return { files, problems };
}
