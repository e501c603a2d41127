/**
 * One follower's raft directory on a full file system (a small tmpfs, filled with a
 * ballast file): it stops applying the raft log, keeps answering `sys/health` 429 and
 * serves stale reads. A broker whose FIRST configured address is that follower must still
 * revoke everything a build holds, deliver a secret written after the follower fell
 * behind, and say in /readyz which node lags. After space is freed the follower catches up.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBroker } from '../../src/main.js';
import { canLogin } from '../support/dynamic-setup.js';
import {
  baoCall,
  type ClusterFixture,
  call,
  ledgerOf,
  newBuild,
  sleep,
  startClusterFixture,
} from '../support/raft-cluster.js';
import { closeTmpfsFixture, fillFileSystem, mountTmpfs } from './support/tmpfs.js';

const FULL_NODE = 'n3';
const mounted: string[] = [];
let fixture: ClusterFixture;
let broker: RunningBroker;
let ballast = '';

async function appliedIndex(address: string): Promise<number> {
  try {
    const leader = await baoCall(address, 'GET', 'sys/leader');
    return Number(leader.body.raft_applied_index ?? -1);
  } catch (error) {
    const node = fixture.cluster.nodes.find((n) => n.address === address);
    throw new Error(
      `${node?.id} at ${address} does not answer (running: ${node?.running()}): ${(error as Error).message}\n${node?.logTail(15)}`,
    );
  }
}

beforeAll(async () => {
  fixture = await startClusterFixture('full', {
    prepareDataDir: async (nodeId, dataDir) => {
      if (nodeId !== FULL_NODE) return;
      // We run as root: a real, small file system under this node's raft data. Loudly fail
      // if it cannot be mounted: the scenario would prove nothing on the big disk.
      mountTmpfs(dataDir, '64m', 'full-disk');
      mounted.push(dataDir);
    },
  });
  const full = fixture.cluster.nodes.find((n) => n.id === FULL_NODE);
  if (full === undefined) throw new Error('no node n3');
  // The full node must be a follower for this scenario.
  const active = await fixture.cluster.waitForActive();
  if (active.id === FULL_NODE) {
    await baoCall(active.address, 'PUT', 'sys/step-down', { token: fixture.cluster.rootToken });
    await sleep(500);
    await fixture.cluster.waitForActive();
  }
  const order = [full.address, ...fixture.addresses.filter((a) => a !== full.address)];
  broker = await fixture.startBroker({ addresses: order });
}, 180000);

afterAll(async () => {
  await closeTmpfsFixture(fixture, mounted, ballast);
});

describe('a follower with a full disk, first in openbao.addresses', () => {
  it('revokes what the build holds, serves fresh writes, and /readyz names the lagging node', async () => {
    const full = fixture.cluster.nodes.find((n) => n.id === FULL_NODE);
    if (full === undefined) throw new Error('no node n3');
    const build = newBuild();
    const token = () => fixture.issuer.mint({ 'build-uuid': build });

    // A follower whose disk fills either lags (raft append fails, it serves stale reads) or,
    // in about one run of four here, panics ("failed to store data": the entry reached its
    // log but not its state). The broker must be right either way; the lag itself is
    // asserted when the node lagged, and a panicked node must show as unreachable.
    ballast = path.join(full.dataDir, 'ballast');
    const filled = await fillFileSystem(ballast, 1024 * 1024, 512, 7);
    const logins: { username: string; password: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const fetched = await call(broker.url, 'POST', '/v1/fetch', token(), {
        secrets: ['status-page-db'],
      });
      expect(fetched.status).toBe(200);
      const data = (fetched.body.secrets as Record<string, { data: Record<string, string> }>)[
        'status-page-db'
      ]?.data;
      logins.push({ username: data?.username ?? '', password: data?.password ?? '' });
    }
    // Enough raft entries for the follower to fall well behind.
    for (let i = 0; i < 150; i++) {
      await fixture.admin.kvWrite('secret', `${fixture.prefix}/filler/${i % 10}`, { n: i });
    }
    const late = { marker: `written after ${FULL_NODE} fell behind` };
    await fixture.admin.kvWrite('secret', `${fixture.prefix}/late`, late);
    await sleep(200);
    const panicked = !full.running();
    if (panicked) {
      process.stdout.write(
        `[cluster full-disk] ${FULL_NODE} panicked on its full disk: ${
          full
            .logTail(400)
            .split('\n')
            .find((l) => l.startsWith('panic:')) ?? ''
        }\n`,
      );
    }
    if (!panicked) {
      const leader = await fixture.cluster.waitForActive();
      const lag = (await appliedIndex(leader.address)) - (await appliedIndex(full.address));
      const stale = await baoCall(full.address, 'GET', `secret/data/${fixture.prefix}/late`, {
        token: fixture.cluster.rootToken,
      });
      const health = await baoCall(full.address, 'GET', 'sys/health');
      process.stdout.write(
        `[cluster full-disk] ${FULL_NODE}: ${(filled / 2 ** 20).toFixed(0)} MiB ballast, ` +
          `${lag} raft entries behind; its own read of the late secret: HTTP ${stale.status}; ` +
          `its sys/health: HTTP ${health.status}\n`,
      );
      // The follower really is behind and really looks healthy to sys/health.
      expect(lag).toBeGreaterThan(100);
      // Behind on the late secret: absent there, or an older version than the active node's.
      const latest = await fixture.admin.kvRead('secret', `${fixture.prefix}/late`);
      const staleVersion =
        stale.status === 200
          ? Number((stale.body.data as { metadata?: { version?: number } }).metadata?.version)
          : 0;
      expect(staleVersion).toBeLessThan(latest?.version ?? 0);
      expect(health.status).toBe(429);
    }

    // The broker reads through the active node: the late secret is there.
    const fetchedLate = await call(broker.url, 'POST', '/v1/fetch', token(), {
      secrets: ['late'],
    });
    expect(fetchedLate.status).toBe(200);
    expect((fetchedLate.body.secrets as Record<string, { data: unknown }>).late?.data).toEqual(
      (await fixture.admin.kvRead('secret', `${fixture.prefix}/late`))?.data,
    );
    expect(
      (fetchedLate.body.secrets as Record<string, { data: unknown }>).late?.data,
    ).toMatchObject(late);

    // And the ledger it revokes from is the active node's, not the lagging follower's.
    const ledger = await ledgerOf(fixture, build);
    const tokens = ledger.entries.filter((e) => e.kind === 'build-token').length;
    expect(tokens).toBeGreaterThan(0);
    const revoked = await call(broker.url, 'POST', '/v1/revoke', token(), {});
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked).toBe(tokens);
    const deadline = Date.now() + 20000;
    let alive = logins.length;
    while (Date.now() < deadline && alive > 0) {
      alive = (await Promise.all(logins.map((l) => canLogin(l.username, l.password)))).filter(
        Boolean,
      ).length;
      if (alive > 0) await sleep(500);
    }
    expect(alive).toBe(0);

    const ready = await fetch(`${broker.url}/readyz`);
    const readiness = (await ready.json()) as {
      ready: boolean;
      checks: { openbao: { status: string; detail: string } };
    };
    process.stdout.write(
      `[cluster full-disk] /readyz ${ready.status}: ${readiness.checks.openbao.detail}\n`,
    );
    expect(ready.status).toBe(200);
    expect(readiness.checks.openbao.status).toBe('degraded');
    expect(readiness.checks.openbao.detail).toContain(
      `${full.address} ${panicked ? 'unreachable' : 'lagging'}`,
    );
    const metrics = await (await fetch(`${broker.url}/metrics`)).text();
    expect(metrics).toMatch(
      panicked ? /zsb_openbao_node_up\{node="0"\} 0/ : /zsb_openbao_node_lagging\{node="0"\} 1/,
    );

    // Space freed: the follower catches up without a restart.
    await rm(ballast, { force: true });
    ballast = '';
    if (panicked) await full.start();
    const freedAt = Date.now();
    let behind = Number.POSITIVE_INFINITY;
    while (Date.now() - freedAt < 40000) {
      const now = await fixture.cluster.waitForActive();
      behind = (await appliedIndex(now.address)) - (await appliedIndex(full.address));
      if (behind < 5) break;
      await sleep(250);
    }
    process.stdout.write(
      `[cluster full-disk] space freed: ${FULL_NODE} ${behind} entries behind after ${Date.now() - freedAt} ms\n`,
    );
    expect(behind).toBeLessThan(5);
  });
});
