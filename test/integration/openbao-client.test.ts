/** The OpenBao adapter against a real server: reads, versions, CAS, wrapping, typed errors. */
import { describe, expect, it } from 'vitest';
import { createOpenBaoClient } from '../../src/openbao/client.js';
import { OpenBaoError } from '../../src/openbao/errors.js';
import { UnsafePathError } from '../../src/openbao/paths.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { baoRequest, realOpenBao, uniquePrefix } from '../support/real-openbao.js';

const bao = realOpenBao();
const prefix = uniquePrefix('client');

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('OpenBao adapter', () => {
  it('reads the latest and a given KV v2 version, and null for a missing entry', async () => {
    await bao.admin.kvWrite('secret', `${prefix}/a`, { v: 1 });
    const second = await bao.admin.kvWrite('secret', `${prefix}/a`, { v: 2 });
    expect(second.version).toBe(2);
    expect(await bao.admin.kvRead('secret', `${prefix}/a`)).toEqual({ data: { v: 2 }, version: 2 });
    expect(await bao.admin.kvRead('secret', `${prefix}/a`, { version: 1 })).toEqual({
      data: { v: 1 },
      version: 1,
    });
    expect(await bao.admin.kvRead('secret', `${prefix}/missing`)).toBeNull();
  });

  it('turns a check-and-set mismatch into a typed error', async () => {
    await bao.admin.kvWrite('secret', `${prefix}/cas`, { v: 1 }, { cas: 0 });
    const error = await rejection(
      bao.admin.kvWrite('secret', `${prefix}/cas`, { v: 2 }, { cas: 0 }),
    );
    expect(error).toBeInstanceOf(OpenBaoError);
    expect(error).toMatchObject({ kind: 'cas_mismatch', status: 400, retryable: false });
  });

  it('maps permission denied and never carries the token or upstream text', async () => {
    const token = await bao.admin.createToken({ policies: ['default'], ttlSeconds: 300 });
    const weak = createOpenBaoClient({
      addresses: [bao.address],
      timeoutMs: 5000,
      maxConnections: 2,
      token: () => token.token,
    });
    const error = await rejection(weak.kvRead('secret', `${prefix}/a`));
    expect(error).toMatchObject({ kind: 'permission_denied', status: 403 });
    const text = `${String(error)} ${JSON.stringify(error)} ${(error as Error).stack ?? ''}`;
    expect(text).not.toContain(token.token);
    expect(text).not.toContain('permission denied');
    expect(text).not.toContain(prefix);
  });

  it('refuses path traversal before anything is sent', async () => {
    // The client library would forward this to /v1/sys/...; our path builder must not.
    await expect(bao.admin.kvRead('secret', '../../sys/policies/acl/root')).rejects.toBeInstanceOf(
      UnsafePathError,
    );
    await expect(bao.admin.kvRead('secret', 'x/%2e%2e/y')).rejects.toBeInstanceOf(UnsafePathError);
  });

  it('wraps a read; the wrapping token unwraps once', async () => {
    await bao.admin.kvWrite('secret', `${prefix}/w`, { w: 'x' });
    const wrapped = await bao.admin.kvReadWrapped('secret', `${prefix}/w`, 30);
    expect(wrapped.ttlSeconds).toBe(30);
    const lookup = await baoRequest(bao.address, 'POST', 'sys/wrapping/lookup', {
      token: bao.rootToken,
      body: { token: wrapped.token },
    });
    expect((lookup.body.data as { creation_path: string }).creation_path).toBe(
      `secret/data/${prefix}/w`,
    );
    await bao.admin.revokeAccessor(wrapped.accessor);
    const unwrap = await baoRequest(bao.address, 'POST', 'sys/wrapping/unwrap', {
      token: wrapped.token,
    });
    expect(unwrap.status).not.toBe(200);
  });

  it('reports health with the server version, and unreachable servers as unavailable', async () => {
    expect(await bao.admin.health()).toEqual({ status: 'ok', version: bao.version });
    const nowhere = createOpenBaoClient({
      addresses: ['http://127.0.0.1:9'],
      timeoutMs: 2000,
      maxConnections: 1,
      token: () => 't',
    });
    expect((await nowhere.health()).status).toBe('unreachable');
    await expect(nowhere.kvRead('secret', 'x')).rejects.toMatchObject({
      kind: 'unavailable',
      retryable: true,
    });
  });

  it('fails over idempotent reads to the next address', async () => {
    const failover = createOpenBaoClient({
      addresses: ['http://127.0.0.1:9', bao.address],
      timeoutMs: 2000,
      maxConnections: 2,
      token: () => bao.rootToken,
    });
    expect(await failover.kvRead('secret', `${prefix}/a`)).toMatchObject({ version: 2 });
  });
});

describe('issuing calls are never repeated', () => {
  it('with several addresses, a create goes to the active node only, and a lost answer is not repeated', async () => {
    // Two "nodes" (proxies of one active server): the create whose answer is cut off after
    // OpenBao executed it must not be sent again to the other node (ADR 0007, 0012).
    const [first, second] = await Promise.all([
      FaultProxy.start(bao.address),
      FaultProxy.start(bao.address),
    ]);
    try {
      const cluster = createOpenBaoClient({
        addresses: ['http://127.0.0.1:9', first.url, second.url],
        timeoutMs: 2000,
        maxConnections: 2,
        token: () => bao.rootToken,
      });
      expect(await cluster.kvRead('secret', `${prefix}/a`)).toMatchObject({ version: 2 });
      await first.setMode({ kind: 'reset', times: 1 });
      await expect(
        cluster.createToken({ policies: ['default'], ttlSeconds: 60, orphan: true }),
      ).rejects.toMatchObject({ kind: 'unavailable' });
      const creates = (p: FaultProxy) => p.seen.filter((r) => r.path.includes('create')).length;
      expect(creates(first) + creates(second)).toBe(1);
      await expect(cluster.kvReadWrapped('secret', `${prefix}/a`, 30)).resolves.toMatchObject({
        ttlSeconds: 30,
      });
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });
});
