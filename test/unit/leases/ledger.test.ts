import { describe, expect, it } from 'vitest';
import {
  BuildRevokedError,
  createLeaseLedger,
  issuerSegment,
  LedgerFullError,
} from '../../../src/leases/ledger.js';
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

const zuulA = 'https://zuul-a.example.org';
const zuulB = 'https://zuul-b.example.org';
const b1 = { issuer: zuulA, build: 'b1' };
const b2 = { issuer: zuulA, build: 'b2' };
const pathOf = (issuer: string, build: string) =>
  `secret/zsb/builds/by-issuer/${issuerSegment(issuer)}/${build}`;

describe('build ledger', () => {
  it('appends under check-and-set, retrying on a concurrent write without losing entries', async () => {
    const kv = new CasKv();
    const ledger = createLeaseLedger(kv, { mount: 'secret', prefix: 'zsb' });
    await ledger.append(b1, [{ kind: 'build-token', accessor: 'acc-1', expiresAt: expires }]);
    kv.conflictsToInject = 2;
    await ledger.append(b1, [
      { kind: 'certificate', mount: 'pki', serial: 's-1', expiresAt: expires },
    ]);
    const stored = kv.entries.get(pathOf(zuulA, 'b1'))?.data as {
      entries: unknown[];
      issuer: string;
      build: string;
    };
    expect(stored.entries).toHaveLength(2);
    // Operators can tell whose ledger it is without reversing the hash.
    expect(stored).toMatchObject({ issuer: zuulA, build: 'b1' });
  });

  it('revokes every entry of the build once, and only that build', async () => {
    const kv = new CasKv();
    const ledger = createLeaseLedger(kv, { mount: 'secret', prefix: 'zsb' });
    await ledger.append(b1, [
      { kind: 'build-token', accessor: 'acc-1', expiresAt: expires },
      { kind: 'certificate', mount: 'pki', serial: 's-1', expiresAt: expires },
    ]);
    await ledger.append(b2, [{ kind: 'build-token', accessor: 'acc-2', expiresAt: expires }]);
    expect(await ledger.revokeBuild(b1)).toEqual({ revoked: 2, failed: 0 });
    expect(kv.revokedAccessors).toEqual(['acc-1']);
    expect(kv.revokedSerials).toEqual(['s-1']);
    expect(await ledger.revokeBuild(b1)).toEqual({ revoked: 0, failed: 0 });
    expect(await ledger.revokeBuild({ issuer: zuulA, build: 'unknown' })).toEqual({
      revoked: 0,
      failed: 0,
    });
  });

  it('keys builds by issuer: the same build-uuid from another Zuul is another build', async () => {
    const kv = new CasKv();
    const ledger = createLeaseLedger(kv, { mount: 'secret', prefix: 'zsb' });
    await ledger.append(b1, [{ kind: 'build-token', accessor: 'acc-a', expiresAt: expires }]);
    expect(await ledger.revokeBuild({ issuer: zuulB, build: 'b1' })).toEqual({
      revoked: 0,
      failed: 0,
    });
    expect(kv.revokedAccessors).toEqual([]);
    expect(await ledger.revokeBuild(b1)).toEqual({ revoked: 1, failed: 0 });
    expect(kv.revokedAccessors).toEqual(['acc-a']);
  });

  it('every revoke moves the epoch first, also of a build with nothing recorded yet', async () => {
    const kv = new CasKv();
    const ledger = createLeaseLedger(kv, { mount: 'secret', prefix: 'zsb' });
    expect(await ledger.epoch(b1)).toBe(0);
    const started = await ledger.epoch(b1);
    await ledger.revokeBuild(b1);
    expect(await ledger.epoch(b1)).toBe(1);
    // A request that began before the revoke can neither record a token nor keep what it issued.
    await expect(
      ledger.append(b1, [{ kind: 'build-token', accessor: 'late', expiresAt: expires }], {
        epoch: started,
      }),
    ).rejects.toBeInstanceOf(BuildRevokedError);
    await expect(ledger.confirm(b1, started)).rejects.toBeInstanceOf(BuildRevokedError);
    // One that began after it can.
    await ledger.append(b1, [{ kind: 'build-token', accessor: 'new', expiresAt: expires }], {
      epoch: 1,
    });
    await ledger.confirm(b1, 1);
    expect(await ledger.revokeBuild(b1)).toEqual({ revoked: 1, failed: 0 });
    expect(kv.revokedAccessors).toEqual(['new']);
  });

  it('revokes ledgers written before builds were keyed by issuer only when it trusts one issuer', async () => {
    const kv = new CasKv();
    await kv.kvWrite('secret', 'zsb/builds/b1', {
      entries: [{ kind: 'build-token', accessor: 'old', expiresAt: expires }],
    });
    const several = createLeaseLedger(kv, { mount: 'secret', prefix: 'zsb' });
    expect(await several.revokeBuild(b1)).toEqual({ revoked: 0, failed: 0 });
    expect(kv.revokedAccessors).toEqual([]);
    const single = createLeaseLedger(kv, {
      mount: 'secret',
      prefix: 'zsb',
      revokeUnscopedLedgers: true,
    });
    expect(await single.revokeBuild(b1)).toEqual({ revoked: 1, failed: 0 });
    expect(kv.revokedAccessors).toEqual(['old']);
    expect(await single.revokeBuild(b1)).toEqual({ revoked: 0, failed: 0 });
  });

  it('fails closed when a build holds too many entries', async () => {
    const kv = new CasKv();
    const ledger = createLeaseLedger(kv, { mount: 'secret', prefix: 'zsb', maxEntriesPerBuild: 2 });
    await ledger.append(b1, [
      { kind: 'build-token', accessor: 'a', expiresAt: expires },
      { kind: 'build-token', accessor: 'b', expiresAt: expires },
    ]);
    await expect(
      ledger.append(b1, [{ kind: 'build-token', accessor: 'c', expiresAt: expires }]),
    ).rejects.toBeInstanceOf(LedgerFullError);
  });
});
