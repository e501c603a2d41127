/**
 * Two of three nodes SIGKILLed: the survivor keeps answering `sys/health` 429 and serves
 * frozen reads, but nothing can be written. The broker fails closed: every fetch 503 with
 * Retry-After, promptly (no hang), /readyz failing. When the nodes return it recovers.
 */
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

let fixture: ClusterFixture;
let broker: RunningBroker;

beforeAll(async () => {
  fixture = await startClusterFixture('quorum');
  broker = await fixture.startBroker();
});

afterAll(async () => {
  await fixture?.close();
});

async function readiness(): Promise<{ status: number; ready: boolean; detail: string }> {
  const res = await fetch(`${broker.url}/readyz`, { signal: AbortSignal.timeout(20000) });
  const body = (await res.json()) as { ready: boolean; checks: { openbao: { detail: string } } };
  return { status: res.status, ready: body.ready, detail: body.checks.openbao.detail };
}

describe('quorum lost', () => {
  it('fails closed with 503 and Retry-After while two nodes are down, and recovers', async () => {
    const token = () => fixture.issuer.mint({ 'build-uuid': newBuild() });
    const before = await readiness();
    expect(before.status).toBe(200);
    expect(
      (await call(broker.url, 'POST', '/v1/fetch', token(), { secrets: ['status-page-db'] }))
        .status,
    ).toBe(200);

    const leader = await fixture.cluster.waitForActive();
    const other = fixture.cluster.nodes.find((n) => n !== leader);
    const survivor = fixture.cluster.nodes.find((n) => n !== leader && n !== other);
    if (other === undefined || survivor === undefined) throw new Error('three nodes expected');
    const killedAt = Date.now();
    await Promise.all([leader.kill('SIGKILL'), other.kill('SIGKILL')]);

    // What sys/health alone would say: a healthy standby.
    const survivorHealth = await baoCall(survivor.address, 'GET', 'sys/health');
    expect(survivorHealth.status).toBe(429);

    const answers = [];
    for (let i = 0; i < 10; i++) {
      for (const secret of ['clouds', 'status-page-db']) {
        answers.push(await call(broker.url, 'POST', '/v1/fetch', token(), { secrets: [secret] }));
      }
      await sleep(300);
    }
    const down = await readiness();
    const slowest = Math.max(...answers.map((a) => a.ms));
    process.stdout.write(
      `[cluster quorum] ${leader.id} and ${other.id} killed; over ${Date.now() - killedAt} ms ` +
        `${answers.length} fetches: ${answers.filter((a) => a.status === 503).length}×503, ` +
        `slowest ${slowest} ms; survivor sys/health ${survivorHealth.status}; ` +
        `/readyz ${down.status}: ${down.detail}\n`,
    );
    for (const a of answers) {
      expect({ status: a.status, retryAfter: a.retryAfter !== null }).toEqual({
        status: 503,
        retryAfter: true,
      });
      expect(a.ms).toBeLessThan(6000);
    }
    expect(down.status).toBe(503);
    expect(down.ready).toBe(false);
    expect(down.detail).toContain('no active OpenBao node');
    const metrics = await (await fetch(`${broker.url}/metrics`)).text();
    expect(metrics).toMatch(/zsb_openbao_node_up\{node="\d"\} 0/);

    const restartedAt = Date.now();
    await Promise.all([leader.start(), other.start()]);
    let recovered: number | undefined;
    while (Date.now() - restartedAt < 60000) {
      const kv = await call(broker.url, 'POST', '/v1/fetch', token(), { secrets: ['clouds'] });
      const db = await call(broker.url, 'POST', '/v1/fetch', token(), {
        secrets: ['status-page-db'],
      });
      if (kv.status === 200 && db.status === 200) {
        recovered = Date.now() - restartedAt;
        break;
      }
      expect([kv.status, db.status].every((s) => s === 200 || s === 503)).toBe(true);
      await sleep(250);
    }
    const up = await readiness();
    process.stdout.write(
      `[cluster quorum] nodes restarted: fetches 200 again after ${recovered} ms; /readyz ${up.status}\n`,
    );
    expect(recovered).toBeDefined();
    expect(up.status).toBe(200);
  });
});
