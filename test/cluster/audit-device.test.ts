/**
 * The active node's only audit device cannot write (its file system is full): OpenBao
 * fails every audited request, while its `sys/health` keeps answering 200. The broker's
 * readiness must see it (the canary read is audited) and fail; nothing is served; once
 * space is freed it recovers.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBroker } from '../../src/main.js';
import {
  baoCall,
  type ClusterFixture,
  call,
  newBuild,
  sleep,
  startClusterFixture,
} from '../support/raft-cluster.js';
import { closeTmpfsFixture, fillFileSystem, mountTmpfs } from './support/tmpfs.js';

const mounted: string[] = [];
const auditDirs = new Map<string, string>();
let fixture: ClusterFixture;
let broker: RunningBroker;
let ballast = '';

beforeAll(async () => {
  fixture = await startClusterFixture('audit', {
    auditFile: async (nodeId, nodeDir) => {
      const dir = path.join(nodeDir, 'audit');
      await mkdir(dir, { recursive: true });
      mountTmpfs(dir, '8m', 'audit');
      mounted.push(dir);
      auditDirs.set(nodeId, dir);
      return path.join(dir, 'audit.log');
    },
  });
  broker = await fixture.startBroker();
}, 180000);

afterAll(async () => {
  await closeTmpfsFixture(fixture, mounted, ballast);
});

async function readiness() {
  const res = await fetch(`${broker.url}/readyz`, { signal: AbortSignal.timeout(20000) });
  const body = (await res.json()) as { checks: { openbao: { status: string; detail: string } } };
  return {
    http: res.status,
    check: body.checks.openbao.status,
    detail: body.checks.openbao.detail,
  };
}

describe("the active node's only audit device full", () => {
  it('fails readiness through the canary read although sys/health says 200, and recovers', async () => {
    const token = () => fixture.issuer.mint({ 'build-uuid': newBuild() });
    expect((await readiness()).http).toBe(200);
    const active = await fixture.cluster.waitForActive();
    const dir = auditDirs.get(active.id);
    if (dir === undefined) throw new Error('no audit directory for the active node');
    ballast = path.join(dir, 'ballast');
    await fillFileSystem(ballast, 64 * 1024, 1024, 1);

    // The first audited requests after the fill may still fit the file system's last page:
    // readiness is asked until it fails (bounded), as a load balancer would.
    const filledAt = Date.now();
    let down = await readiness();
    while (down.http === 200 && Date.now() - filledAt < 10000) {
      await sleep(200);
      down = await readiness();
    }
    const health = await baoCall(active.address, 'GET', 'sys/health');
    const fetched = await call(broker.url, 'POST', '/v1/fetch', token(), { secrets: ['clouds'] });
    process.stdout.write(
      `[cluster audit] ${active.id}'s audit file system full: its sys/health ${health.status}; ` +
        `broker /readyz ${down.http} after ${Date.now() - filledAt} ms (${down.detail.split(';')[0]}); a fetch ${fetched.status}\n`,
    );
    expect(health.status).toBe(200);
    expect(down.http).toBe(503);
    expect(down.detail).toContain('canary read through the active node failed');
    expect(fetched.status).not.toBe(200);
    expect([502, 503]).toContain(fetched.status);

    await rm(ballast, { force: true });
    ballast = '';
    const freedAt = Date.now();
    let up = await readiness();
    while (up.http !== 200 && Date.now() - freedAt < 20000) {
      await sleep(250);
      up = await readiness();
    }
    const again = await call(broker.url, 'POST', '/v1/fetch', token(), { secrets: ['clouds'] });
    process.stdout.write(
      `[cluster audit] space freed: /readyz ${up.http} after ${Date.now() - freedAt} ms, a fetch ${again.status}\n`,
    );
    expect(up.http).toBe(200);
    expect(again.status).toBe(200);
  });
});
