import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { OpenBaoAdmin } from '../../../src/openbao/client.js';
import { startBrokerCredential } from '../../../src/openbao/credential.js';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

class FakeAdmin implements Pick<OpenBaoAdmin, 'lookupSelf' | 'renewSelf' | 'appRoleLogin'> {
  renewals = 0;
  logins = 0;
  failRenew = false;
  async lookupSelf() {
    return { ttlSeconds: 300, renewable: true };
  }
  async renewSelf() {
    if (this.failRenew) throw new Error('renew refused');
    this.renewals++;
    return { ttlSeconds: 300, renewable: true };
  }
  async appRoleLogin() {
    this.logins++;
    return { token: `approle-token-${this.logins}`, accessor: 'a', ttlSeconds: 600 };
  }
}

let dir: string;
beforeEach(async () => {
  vi.useFakeTimers();
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-cred-'));
  await writeFile(path.join(dir, 'token'), 'file-token\n', { mode: 0o600 });
  await writeFile(path.join(dir, 'role'), 'role-id');
  await writeFile(path.join(dir, 'secret'), 'secret-id', { mode: 0o600 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('broker credential', () => {
  it('renews a renewable token at two thirds of its TTL', async () => {
    const admin = new FakeAdmin();
    const cred = await startBrokerCredential(
      admin as unknown as OpenBaoAdmin,
      { method: 'token', tokenFile: path.join(dir, 'token') },
      quiet,
      Date.now,
    );
    expect(cred.token()).toBe('file-token');
    await vi.advanceTimersByTimeAsync(199_000);
    expect(admin.renewals).toBe(0);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(admin.renewals).toBe(1);
    expect(cred.status().status).toBe('ok');
    cred.stop();
  });

  it('logs in again with AppRole before the token expires', async () => {
    const admin = new FakeAdmin();
    const cred = await startBrokerCredential(
      admin as unknown as OpenBaoAdmin,
      {
        method: 'approle',
        roleIdFile: path.join(dir, 'role'),
        secretIdFile: path.join(dir, 'secret'),
        mount: 'approle',
      },
      quiet,
      Date.now,
    );
    expect(cred.token()).toBe('approle-token-1');
    await vi.advanceTimersByTimeAsync(401_000);
    expect(cred.token()).toBe('approle-token-2');
    cred.stop();
  });

  it('is degraded while refreshing fails and failing once the token expired', async () => {
    const admin = new FakeAdmin();
    const cred = await startBrokerCredential(
      admin as unknown as OpenBaoAdmin,
      { method: 'token', tokenFile: path.join(dir, 'token') },
      quiet,
      Date.now,
    );
    admin.failRenew = true;
    // OpenBao refuses the renewal and the token in the file alike.
    admin.lookupSelf = async () => {
      throw new Error('permission denied');
    };
    await vi.advanceTimersByTimeAsync(201_000);
    expect(cred.status().status).toBe('degraded');
    await vi.advanceTimersByTimeAsync(200_000);
    expect(cred.status().status).toBe('failing');
    expect(cred.status().detail).not.toContain('file-token');
    cred.stop();
  });

  it.each(['0644', '0650', '0604', '0660'])(
    'refuses a token file of mode %s at start, naming the key, the file, its mode and the fix',
    async (octal) => {
      const mode = Number.parseInt(octal, 8);
      const file = path.join(dir, 'token');
      await chmod(file, mode);
      const error = await startBrokerCredential(
        new FakeAdmin() as unknown as OpenBaoAdmin,
        { method: 'token', tokenFile: file },
        quiet,
        Date.now,
      ).catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(Error);
      const message = (error as Error).message;
      expect(message).toContain('openbao.auth.tokenFile');
      expect(message).toContain(file);
      expect(message).toContain(`mode 0${mode.toString(8)}`);
      expect(message).toContain(`chmod 600 ${file}`);
      expect(message).not.toContain('file-token');
    },
  );

  it('refuses a group-readable AppRole secret-id, also when it changes after start', async () => {
    const admin = new FakeAdmin();
    const auth = {
      method: 'approle',
      roleIdFile: path.join(dir, 'role'),
      secretIdFile: path.join(dir, 'secret'),
      mount: 'approle',
    } as const;
    await chmod(auth.secretIdFile, 0o660);
    await expect(
      startBrokerCredential(admin as unknown as OpenBaoAdmin, auth, quiet, Date.now),
    ).rejects.toThrow(/openbao\.auth\.secretIdFile: .* \(mode 0660\)/);
    await chmod(auth.secretIdFile, 0o600);
    const errors: string[] = [];
    const cred = await startBrokerCredential(
      admin as unknown as OpenBaoAdmin,
      auth,
      { ...quiet, error: (_o: object, message: string) => errors.push(message) },
      Date.now,
    );
    // A new secret-id file, written readable by everyone: the next login refuses it and
    // the current token keeps serving until it expires.
    await writeFile(auth.secretIdFile, 'secret-id-2', { mode: 0o644 });
    await chmod(auth.secretIdFile, 0o644);
    await vi.advanceTimersByTimeAsync(401_000);
    expect(admin.logins).toBe(1);
    expect(cred.token()).toBe('approle-token-1');
    expect(cred.status().status).toBe('degraded');
    expect(errors.join('\n')).toContain('mode 0644');
    expect(errors.join('\n')).not.toContain('secret-id-2');
    cred.stop();
  });
});
