/**
 * `zsb dev --ha`: the playground on a 3-node raft cluster. The printed example works, a
 * SIGKILLed active node is survived, /readyz names the lost node, and SIGINT stops every
 * OpenBao process it started.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { baoCall } from '../../src/dev/openbao-cluster.js';
import { exitOf, runZsb, spawnZsb, waitForOutput } from '../support/process.js';
import { sleep } from '../support/raft-cluster.js';

let cwd = '';
afterAll(async () => {
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it('zsb dev --ha serves through a leader kill and stops every node on SIGINT', async () => {
  cwd = await mkdtemp(path.join(tmpdir(), 'zsb-dev-ha-'));
  const child = spawnZsb(['dev', '--ha', '--port', '0'], { cwd });
  const nodes: { id: string; address: string; pid: number }[] = [];
  try {
    const out = await waitForOutput(child, /n3\s+http:\/\/\S+\s+pid \d+/, 90000);
    const url = /broker\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1] ?? '';
    for (const m of out.matchAll(/(n\d)\s+(http:\/\/127\.0\.0\.1:\d+)\s+pid (\d+)/g)) {
      nodes.push({ id: m[1] ?? '', address: m[2] ?? '', pid: Number(m[3]) });
    }
    expect(nodes).toHaveLength(3);
    const token = (await runZsb(['dev', 'token'], { cwd })).stdout.trim();
    const fetchClouds = async () =>
      (
        await fetch(`${url}/v1/fetch`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ secrets: ['compliance-clouds'] }),
          signal: AbortSignal.timeout(20000),
        })
      ).status;
    expect(await fetchClouds()).toBe(200);

    const statuses = await Promise.all(
      nodes.map(async (n) => (await baoCall(n.address, 'GET', 'sys/health')).status),
    );
    const active = nodes[statuses.indexOf(200)];
    if (active === undefined) throw new Error('no active node in the playground');
    process.kill(active.pid, 'SIGKILL');
    const killedAt = Date.now();
    let status = 0;
    while (Date.now() - killedAt < 30000) {
      status = await fetchClouds();
      if (status === 200) break;
      expect(status).toBe(503);
      await sleep(200);
    }
    const ready = (await (await fetch(`${url}/readyz`)).json()) as {
      checks: { openbao: { status: string; detail: string } };
    };
    process.stdout.write(
      `[cluster dev --ha] ${active.id} killed: fetches 200 again after ${Date.now() - killedAt} ms; ` +
        `/readyz openbao ${ready.checks.openbao.status}\n`,
    );
    expect(status).toBe(200);
    expect(ready.checks.openbao.status).toBe('degraded');
    expect(ready.checks.openbao.detail).toContain(`${active.address} unreachable`);
  } finally {
    child.kill('SIGINT');
  }
  expect(await exitOf(child)).toBe(0);
  for (const n of nodes) expect(alive(n.pid)).toBe(false);
}, 150000);
