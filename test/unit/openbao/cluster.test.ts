/** Cluster routing (ADR 0012): finding the active node, fresh-read headers, readiness words. */
import { describe, expect, it } from 'vitest';
import {
  createClusterRouter,
  describeCluster,
  freshReadHeaders,
  isNoActiveNode,
  type NodeProbe,
} from '../../../src/openbao/cluster.js';
import { kindForStatus } from '../../../src/openbao/errors.js';

const ADDRESSES = ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3'];
const standby = { initialized: true, sealed: false, standby: true, cluster_id: 'c-1' };
const active = {
  initialized: true,
  sealed: false,
  standby: false,
  cluster_id: 'c-1',
  version: '2.7.2',
};

function probeOf(
  health: readonly ({ status: number; body: unknown } | 'down')[],
  applied: readonly number[] = [],
): NodeProbe & { calls: number } {
  const probe = Object.assign(
    async (index: number, path: string) => {
      probe.calls++;
      const h = health[index];
      if (h === undefined || h === 'down') throw new Error('ECONNREFUSED');
      if (path === '/sys/leader')
        return { status: 200, body: { raft_applied_index: applied[index] } };
      return h;
    },
    { calls: 0 },
  );
  return probe;
}

describe('finding the active node', () => {
  it('picks the node whose sys/health answers 200, and keeps it until it is lost', async () => {
    const probe = probeOf([{ status: 429, body: standby }, 'down', { status: 200, body: active }]);
    const router = createClusterRouter(ADDRESSES, probe);
    expect(await router.active()).toBe(2);
    const calls = probe.calls;
    expect(await router.active()).toBe(2);
    expect(probe.calls).toBe(calls);
    router.lost(2);
    expect(await router.active()).toBe(2);
    expect(probe.calls).toBeGreaterThan(calls);
  });

  it('with no active node answers undefined, and believes it only briefly', async () => {
    let now = 1000;
    const probe = probeOf([{ status: 429, body: standby }, 'down', 'down']);
    const router = createClusterRouter(ADDRESSES, probe, { now: () => now, negativeCacheMs: 200 });
    expect(await router.active()).toBeUndefined();
    const calls = probe.calls;
    expect(await router.active()).toBeUndefined();
    expect(probe.calls).toBe(calls);
    now += 201;
    expect(await router.active()).toBeUndefined();
    expect(probe.calls).toBeGreaterThan(calls);
  });

  it('asks each node once for concurrent callers', async () => {
    const probe = probeOf([
      { status: 200, body: active },
      { status: 429, body: standby },
    ]);
    const router = createClusterRouter(ADDRESSES.slice(0, 2), probe);
    await Promise.all(Array.from({ length: 20 }, () => router.active()));
    expect(probe.calls).toBe(2);
  });

  it('tells whether a node is active right now', async () => {
    const router = createClusterRouter(
      ADDRESSES,
      probeOf([
        { status: 429, body: standby },
        { status: 200, body: active },
      ]),
    );
    expect(await router.isActiveNow(0)).toBe(false);
    expect(await router.isActiveNow(1)).toBe(true);
    expect(await router.isActiveNow(2)).toBe(false);
  });

  it('learns the cluster id for fresh reads from sys/health', async () => {
    const router = createClusterRouter(ADDRESSES, probeOf([{ status: 200, body: active }]));
    expect(router.readHeaders()).toEqual({});
    await router.active();
    expect(router.readHeaders()).toEqual(freshReadHeaders('c-1'));
  });
});

describe('fresh reads and "no active node"', () => {
  it('asks for an index no node reached, in this cluster, forwarded to the active node', () => {
    const headers = freshReadHeaders('c-1');
    expect(headers['X-Vault-Inconsistent']).toBe('forward-active-node');
    expect(JSON.parse(Buffer.from(headers['X-Vault-Index'] ?? '', 'base64').toString())).toEqual({
      cluster: 'c-1',
      value: '18446744073709551615',
    });
  });

  it('a redirect or "active cluster node not found" means no active node; other 500s do not', () => {
    expect(isNoActiveNode(307, [])).toBe(true);
    expect(isNoActiveNode(500, ['local node not active but active cluster node not found'])).toBe(
      true,
    );
    expect(isNoActiveNode(500, ['internal error'])).toBe(false);
    expect(kindForStatus(500, ['local node not active but active cluster node not found'])).toBe(
      'unavailable',
    );
    expect(kindForStatus(500, ['internal error'])).toBe('upstream');
  });
});

describe('readiness words', () => {
  it('names a lagging node and degrades; all well is ok', async () => {
    const health = [
      { status: 200, body: active },
      { status: 429, body: standby },
      { status: 429, body: standby },
    ];
    const lagging = await createClusterRouter(ADDRESSES, probeOf(health, [500, 499, 300])).view();
    expect(describeCluster(lagging)).toMatchObject({ status: 'degraded' });
    expect(describeCluster(lagging).detail).toContain(`${ADDRESSES[2]} lagging`);
    expect(lagging.version).toBe('2.7.2');
    const fine = await createClusterRouter(ADDRESSES, probeOf(health, [500, 499, 498])).view();
    expect(describeCluster({ ...fine, autopilot: { healthy: true, failureTolerance: 1 } })).toEqual(
      {
        status: 'ok',
        detail: expect.stringContaining('autopilot healthy, failure tolerance 1'),
      },
    );
    expect(
      describeCluster({ ...fine, autopilot: { healthy: true, failureTolerance: 0 } }).status,
    ).toBe('degraded');
  });
});
