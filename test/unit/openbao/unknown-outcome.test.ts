/**
 * Writes whose answer is lost (the leader died with the write in flight, a connection cut
 * after OpenBao applied it): the ledger and the rotation state read back and decide by
 * their own accessor or record whether the write landed, never by guessing (ADR 0012).
 */
import { describe, expect, it } from 'vitest';
import { createLeaseLedger } from '../../../src/leases/ledger.js';
import { OpenBaoError } from '../../../src/openbao/errors.js';
import { createRotationStateStore, LockLostError } from '../../../src/rotation/state.js';
import { MemoryKv } from '../../support/memory-kv.js';

/** A KV whose next `writes` writes apply (or not) and then lose their answer. */
function lossyKv(plan: { applies: boolean }[]) {
  const kv = new MemoryKv();
  const writes = { sent: 0 };
  const lossy = {
    kvRead: kv.kvRead.bind(kv),
    kvReadWrapped: kv.kvReadWrapped.bind(kv),
    wrapData: kv.wrapData.bind(kv),
    async kvWrite(
      mount: string,
      path: string,
      data: Readonly<Record<string, unknown>>,
      options?: { cas?: number },
    ) {
      writes.sent++;
      const step = plan.shift();
      if (step === undefined) return kv.kvWrite(mount, path, data, options);
      if (step.applies) await kv.kvWrite(mount, path, data, options);
      throw new OpenBaoError('kv write', 'unavailable', 0);
    },
  };
  return { kv, lossy, writes };
}

const noRevoke = { revokeAccessor: async () => {}, pkiRevoke: async () => {} };
const build = { issuer: 'https://zuul.example.org', build: 'b1' };
const expiresAt = new Date(Date.now() + 60000).toISOString();

describe('ledger append with an unknown outcome', () => {
  it('a write that landed is not written again', async () => {
    const { kv, lossy, writes } = lossyKv([{ applies: true }]);
    const ledger = createLeaseLedger({ ...lossy, ...noRevoke }, { mount: 'secret', prefix: 'z' });
    await ledger.append(build, [{ kind: 'build-token', accessor: 'acc-1', expiresAt }]);
    expect(writes.sent).toBe(1);
    const [path] = kv.paths();
    const history = kv.history('secret', (path ?? '').replace(/^secret\//, ''));
    expect(history).toHaveLength(1);
    expect(history[0]?.data).toMatchObject({ entries: [{ accessor: 'acc-1' }] });
  });

  it('a write that did not land is sent again with check-and-set and lands once', async () => {
    const { kv, lossy, writes } = lossyKv([{ applies: false }]);
    const ledger = createLeaseLedger({ ...lossy, ...noRevoke }, { mount: 'secret', prefix: 'z' });
    await ledger.append(build, [{ kind: 'build-token', accessor: 'acc-2', expiresAt }]);
    expect(writes.sent).toBe(2);
    const [path] = kv.paths();
    const history = kv.history('secret', (path ?? '').replace(/^secret\//, ''));
    expect(history).toHaveLength(1);
    expect(history[0]?.data).toMatchObject({ entries: [{ accessor: 'acc-2' }] });
  });
});

describe('rotation state write with an unknown outcome', () => {
  const record = { holder: { id: 'me', until: 123 }, failures: 0 };

  it('our record at the next version: landed, the version is the new one', async () => {
    const { lossy, writes } = lossyKv([{ applies: true }]);
    const store = createRotationStateStore(lossy, { mount: 'secret', prefix: 'z' });
    await expect(store.write('r', record, 0)).resolves.toEqual({ record, version: 1 });
    expect(writes.sent).toBe(1);
  });

  it('the version unchanged: not landed, sent again once', async () => {
    const { kv, lossy, writes } = lossyKv([{ applies: false }]);
    const store = createRotationStateStore(lossy, { mount: 'secret', prefix: 'z' });
    await expect(store.write('r', record, 0)).resolves.toEqual({ record, version: 1 });
    expect(writes.sent).toBe(2);
    expect(kv.history('secret', 'z/rotations/r')).toHaveLength(1);
  });

  it("someone else's record there: the lock is lost, nothing is overwritten", async () => {
    const { kv, lossy } = lossyKv([{ applies: false }]);
    kv.put('secret', 'z/rotations/r', { holder: { id: 'other', until: 999 }, failures: 0 });
    const store = createRotationStateStore(lossy, { mount: 'secret', prefix: 'z' });
    await expect(store.write('r', record, 0)).rejects.toBeInstanceOf(LockLostError);
    expect(kv.history('secret', 'z/rotations/r')).toHaveLength(1);
  });
});
