import { describe, expect, it } from 'vitest';
import { createLeaseLedger, LedgerFullError } from '../../../src/leases/ledger.js';
import { OpenBaoError } from '../../../src/openbao/errors.js';
import { FakeOpenBao } from '../../support/fake-openbao.js';

/** A KV with real check-and-set semantics, and a revoker that records what it revoked. */
class CasKv extends FakeOpenBao {
  readonly revokedSerials: string[] = [];
  conflictsToInject = 0;
  override async kvWrite(
    mount: string,
    path: string,
    data: Readonly<Record<string, unknown>>,
    options?: { cas?: number },
  ) {
    const current = this.entries.get(`${mount}/${path}`)?.version ?? 0;
    if (this.conflictsToInject > 0) {
      this.conflictsToInject--;
      // Someone else wrote in between: the version moves on.
      this.entries.set(`${mount}/${path}`, {
        data: this.entries.get(`${mount}/${path}`)?.data ?? { entries: [] },
        version: current + 1,
      });
      throw new OpenBaoError('kv write', 'cas_mismatch', 400);
    }
    if (options?.cas !== undefined && options.cas !== current)
      throw new OpenBaoError('kv write', 'cas_mismatch', 400);
    return super.kvWrite(mount, path, data);
  }
  async pkiRevoke(_mount: string, serial: string): Promise<void> {
    this.revokedSerials.push(serial);
  }
}

const expires = new Date(0).toISOString();

describe('build ledger', () => {
  it('appends under check-and-set, retrying on a concurrent write without losing entries', async () => {
    const kv = new CasKv();
    const ledger = createLeaseLedger(kv, { mount: 'secret', prefix: 'zsb' });
    await ledger.append('b1', [{ kind: 'build-token', accessor: 'acc-1', expiresAt: expires }]);
    kv.conflictsToInject = 2;
    await ledger.append('b1', [
      { kind: 'certificate', mount: 'pki', serial: 's-1', expiresAt: expires },
    ]);
    const stored = kv.entries.get('secret/zsb/builds/b1')?.data as { entries: unknown[] };
    expect(stored.entries).toHaveLength(2);
  });

  it('revokes every entry of the build once, and only that build', async () => {
    const kv = new CasKv();
    const ledger = createLeaseLedger(kv, { mount: 'secret', prefix: 'zsb' });
    await ledger.append('b1', [
      { kind: 'build-token', accessor: 'acc-1', expiresAt: expires },
      { kind: 'certificate', mount: 'pki', serial: 's-1', expiresAt: expires },
    ]);
    await ledger.append('b2', [{ kind: 'build-token', accessor: 'acc-2', expiresAt: expires }]);
    expect(await ledger.revokeBuild('b1')).toEqual({ revoked: 2, failed: 0 });
    expect(kv.revokedAccessors).toEqual(['acc-1']);
    expect(kv.revokedSerials).toEqual(['s-1']);
    expect(await ledger.revokeBuild('b1')).toEqual({ revoked: 0, failed: 0 });
    expect(await ledger.revokeBuild('unknown')).toEqual({ revoked: 0, failed: 0 });
  });

  it('fails closed when a build holds too many entries', async () => {
    const kv = new CasKv();
    const ledger = createLeaseLedger(kv, { mount: 'secret', prefix: 'zsb', maxEntriesPerBuild: 2 });
    await ledger.append('b', [
      { kind: 'build-token', accessor: 'a', expiresAt: expires },
      { kind: 'build-token', accessor: 'b', expiresAt: expires },
    ]);
    await expect(
      ledger.append('b', [{ kind: 'build-token', accessor: 'c', expiresAt: expires }]),
    ).rejects.toBeInstanceOf(LedgerFullError);
  });
});
