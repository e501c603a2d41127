import { describe, expect, it } from 'vitest';
import { undoAll } from '../../../src/broker/dynamic.js';
import { OpenBaoError } from '../../../src/openbao/errors.js';
import type { DynamicIssuer, Issued, TokenAdmin } from '../../../src/openbao/interface.js';

/** Records what a rollback revokes; `inner` is what unwrapping answers (undefined: it fails). */
function recorder(inner: Issued | undefined) {
  const calls: string[] = [];
  const openbao: DynamicIssuer & TokenAdmin = {
    createBuildToken: () => Promise.reject(new Error('not used')),
    databaseCreds: () => Promise.reject(new Error('not used')),
    pkiIssue: () => Promise.reject(new Error('not used')),
    childToken: () => Promise.reject(new Error('not used')),
    async unwrap(token) {
      calls.push(`unwrap ${token}`);
      if (inner === undefined) throw new OpenBaoError('unwrap', 'invalid_request', 400);
      return inner;
    },
    async revokeLease(id) {
      calls.push(`lease ${id}`);
    },
    async revokeAccessor(accessor) {
      calls.push(`accessor ${accessor}`);
    },
    async pkiRevoke(mount, serial) {
      calls.push(`serial ${mount} ${serial}`);
    },
  };
  return { calls, openbao };
}

describe('undoAll', () => {
  it('unwraps a wrapped database secret it never handed out and revokes the lease inside', async () => {
    const { calls, openbao } = recorder({
      wrapped: false,
      data: { username: 'u', password: 'p' },
      lease: { id: 'db/creds/ro/1', ttlSeconds: 60, renewable: true },
    });
    await undoAll(openbao, [{ kind: 'wrapped', token: 'wrap-1', accessor: 'wacc-1' }]);
    expect(calls).toEqual(['unwrap wrap-1', 'lease db/creds/ro/1']);
  });

  it('revokes a wrapped token secret by its accessor and a wrapped certificate by its serial', async () => {
    const token = recorder({ wrapped: false, data: { accessor: 'child-acc' }, lease: null });
    await undoAll(token.openbao, [{ kind: 'wrapped', token: 'w', accessor: 'wa' }]);
    expect(token.calls).toEqual(['unwrap w', 'accessor child-acc']);
    const cert = recorder({ wrapped: false, data: { serial_number: '01:02' }, lease: null });
    await undoAll(cert.openbao, [{ kind: 'wrapped', token: 'w', accessor: 'wa', mount: 'pki' }]);
    expect(cert.calls).toEqual(['unwrap w', 'serial pki 01:02']);
  });

  it('falls back to revoking the wrapping token when it can no longer be unwrapped', async () => {
    const { calls, openbao } = recorder(undefined);
    await undoAll(openbao, [{ kind: 'wrapped', token: 'w', accessor: 'wa' }]);
    expect(calls).toEqual(['unwrap w', 'accessor wa']);
  });
});
