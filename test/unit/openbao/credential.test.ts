import { mkdtemp, writeFile } from 'node:fs/promises';
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
  await writeFile(path.join(dir, 'token'), 'file-token\n');
  await writeFile(path.join(dir, 'role'), 'role-id');
  await writeFile(path.join(dir, 'secret'), 'secret-id');
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
});
