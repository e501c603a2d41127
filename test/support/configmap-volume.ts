/**
 * A directory laid out the way the kubelet mounts a ConfigMap or Secret volume, and updated
 * the way it updates one (its AtomicWriter): the files live in a timestamped directory
 * `..<time>`, the symlink `..data` points to it, and each visible name is a symlink
 * `name -> ..data/name`. An update writes a new timestamped directory, points `..data_tmp`
 * at it, renames `..data_tmp` over `..data` (the one atomic step), adds symlinks for new
 * names, removes those of dropped names and deletes the old directory.
 */
import { mkdir, readlink, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export class ConfigMapVolume {
  #generation = 0;
  #names = new Set<string>();

  constructor(readonly dir: string) {}

  /** The first or a later content of the volume: file name → text. */
  async write(files: Readonly<Record<string, string>>): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.#generation++;
    const stamp = `..2026_12_01_00_00_00.${String(this.#generation).padStart(9, '0')}`;
    const target = path.join(this.dir, stamp);
    await mkdir(target);
    for (const [name, text] of Object.entries(files)) {
      await writeFile(path.join(target, name), text, { mode: 0o644 });
    }
    const data = path.join(this.dir, '..data');
    const previous = await readlink(data).catch(() => undefined);
    const tmp = path.join(this.dir, '..data_tmp');
    await symlink(stamp, tmp);
    await rename(tmp, data);
    const next = new Set(Object.keys(files));
    for (const name of next) {
      if (!this.#names.has(name))
        await symlink(path.join('..data', name), path.join(this.dir, name));
    }
    for (const name of this.#names) {
      if (!next.has(name)) await unlink(path.join(this.dir, name));
    }
    this.#names = next;
    if (previous !== undefined) await rm(path.join(this.dir, previous), { recursive: true });
  }
}
