import { chmod, chown, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PrivateFileError,
  privateModeProblem,
  readPrivateFile,
  readPrivateFileSync,
} from '../../../src/config/private-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-private-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('private files', () => {
  it.each([0o600, 0o400, 0o700, 0o100600])('accepts mode %o', (mode) => {
    expect(privateModeProblem(mode, '/f', 'k')).toBeUndefined();
  });

  it.each([
    [0o644, '0644'],
    [0o640, '0640'],
    [0o604, '0604'],
    [0o610, '0610'],
    [0o601, '0601'],
    [0o100666, '0666'],
  ])('refuses mode %o as %s', (mode, octal) => {
    expect(privateModeProblem(mode, '/run/x', 'some.key')).toBe(
      `some.key: /run/x is accessible to group or others (mode ${octal}) but holds a secret; ` +
        "make it private to the broker's user: chmod 600 /run/x " +
        '(or, owned by root, readable by a group at most: chmod 440)',
    );
  });

  // PostgreSQL's rule: a root-owned file may be group-readable (a Kubernetes Secret volume
  // with fsGroup is root:fsGroup 0440); not for any other owner, and never more than read.
  it.each([0o440, 0o640, 0o400, 0o600])('accepts mode %o owned by root', (mode) => {
    expect(privateModeProblem(mode, '/f', 'k', 0)).toBeUndefined();
  });

  it.each([0o440, 0o640])('refuses mode %o owned by another user', (mode) => {
    expect(privateModeProblem(mode, '/f', 'k', 1000)).toMatch(/is accessible to group or others/);
  });

  it.each([0o660, 0o650, 0o644, 0o604, 0o444])('refuses mode %o owned by root', (mode) => {
    expect(privateModeProblem(mode, '/f', 'k', 0)).toMatch(/is accessible to group or others/);
  });

  it('reads a private file, and judges a symlink by its target', async () => {
    const file = path.join(dir, 'secret');
    await writeFile(file, 'the-secret', { mode: 0o600 });
    const link = path.join(dir, 'link');
    await symlink(file, link);
    expect(readPrivateFileSync(link, 'k').toString()).toBe('the-secret');
    expect((await readPrivateFile(link, 'k')).toString()).toBe('the-secret');
    await chmod(file, 0o644);
    expect(() => readPrivateFileSync(link, 'k')).toThrow(PrivateFileError);
    await expect(readPrivateFile(link, 'k')).rejects.toThrow(/mode 0644/);
    await expect(readPrivateFile(link, 'k')).rejects.not.toThrow(/the-secret/);
  });

  it('takes the owner from the file read: group-readable only when root owns it', async () => {
    const file = path.join(dir, 'group-readable');
    await writeFile(file, 'the-secret', { mode: 0o640 });
    if (process.getuid?.() === 0) {
      // Written by root (as in CI): accepted as root-owned; then handed to another owner,
      // keeping group root, since the owner decides, not the group.
      expect(readPrivateFileSync(file, 'k').toString()).toBe('the-secret');
      expect((await readPrivateFile(file, 'k')).toString()).toBe('the-secret');
      await chown(file, 1000, 0);
    }
    expect(() => readPrivateFileSync(file, 'k')).toThrow(/mode 0640/);
    await expect(readPrivateFile(file, 'k')).rejects.toThrow(/mode 0640/);
  });

  it('passes errno errors through', async () => {
    expect(() => readPrivateFileSync(path.join(dir, 'missing'), 'k')).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
  });
});
