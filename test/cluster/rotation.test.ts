/**
 * Rotations on a real cluster: `zsb rotate` whose first configured address is a standby
 * (it used to read its own lock from the standby, lose its check-and-set and leave the lock
 * held until it expired), and a leader SIGKILL between a rotation's promotion and its
 * record of it (the run resumes, the secret is promoted exactly once, a job gets the
 * promoted value at once).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBroker } from '../../src/main.js';
import { createOpenBaoClient } from '../../src/openbao/client.js';
import { OpenBaoError } from '../../src/openbao/errors.js';
import { runRotation } from '../../src/rotation/protocol.js';
import { createGeneratedKvDriver, KvSecret } from '../../src/rotation/providers/kv.js';
import { createRotationStateStore, stateKey } from '../../src/rotation/state.js';
import { ROOT, runZsb } from '../support/process.js';
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
  fixture = await startClusterFixture('rotate');
  const active = await fixture.cluster.waitForActive();
  // Standby first, as in the report.
  broker = await fixture.startBroker({
    addresses: [...fixture.addresses.filter((a) => a !== active.address), active.address],
  });
});

afterAll(async () => {
  await fixture?.close();
});

const silent = { info() {}, warn() {}, error() {} };

async function currentVersion(): Promise<number> {
  const leader = await fixture.cluster.waitForActive();
  const meta = await baoCall(leader.address, 'GET', `secret/metadata/${fixture.prefix}/api-key`, {
    token: fixture.cluster.rootToken,
  });
  return Number((meta.body.data as { current_version?: number } | undefined)?.current_version);
}

async function latestApiKey(): Promise<unknown> {
  return (await fixture.admin.kvRead('secret', `${fixture.prefix}/api-key`))?.data.apiKey;
}

async function jobSees(): Promise<unknown> {
  const answer = await call(
    broker.url,
    'POST',
    '/v1/fetch',
    fixture.issuer.mint({ 'build-uuid': newBuild() }),
    { secrets: ['api-key'] },
  );
  expect(answer.status).toBe(200);
  return (answer.body.secrets as Record<string, { data: { apiKey?: unknown } }>)['api-key']?.data
    .apiKey;
}

describe('rotation on a cluster', () => {
  it('zsb rotate with a standby as first address rotates and releases its lock', async () => {
    const active = await fixture.cluster.waitForActive();
    const config = await fixture.writeConfig('standby-first.yaml', [
      ...fixture.addresses.filter((a) => a !== active.address),
      active.address,
    ]);
    const before = await currentVersion();
    for (let round = 1; round <= 2; round++) {
      const started = Date.now();
      const run = await runZsb(['rotate', 'api-key', '--config', config], { cwd: ROOT });
      process.stdout.write(
        `[cluster rotate] zsb rotate #${round} (standby first, default lock TTL): exit ${run.code} in ${Date.now() - started} ms: ${run.stdout.trim()}\n`,
      );
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('rotated');
      // The job reads what was just promoted, through a broker whose first node is a standby.
      expect(await jobSees()).toBe(await latestApiKey());
    }
    // Two runs, two promotions: the second was not "busy" behind a left-over lock.
    expect(await currentVersion()).toBe(before + 2);
    const state = await fixture.admin.kvRead(
      'secret',
      `${fixture.statePrefix}/rotations/${stateKey('api-key')}`,
    );
    expect(state?.data.holder).toBeUndefined();
    expect(state?.data.run).toBeUndefined();
  });

  it('a leader SIGKILL right after promotion: the run resumes and promotes exactly once', async () => {
    const client = createOpenBaoClient({
      addresses: fixture.addresses,
      timeoutMs: 5000,
      maxConnections: 4,
      token: () => fixture.cluster.rootToken,
    });
    const store = createRotationStateStore(client, {
      mount: 'secret',
      prefix: fixture.statePrefix,
    });
    const driver = createGeneratedKvDriver(
      new KvSecret(client, { mount: 'secret', path: `${fixture.prefix}/api-key` }),
      { key: 'apiKey', kind: 'token', length: 32, format: 'hex' },
    );
    const before = await currentVersion();
    let killedId = '';
    let killedAt = 0;
    const options = {
      store,
      instanceId: 'cluster-test',
      lockTtlMs: 120000,
      force: true,
      isDue: () => true,
      logger: silent,
      attempts: 2,
      retryBaseMs: 50,
      onBoundary: async (boundary: string) => {
        if (boundary !== 'promote-applied' || killedId) return;
        const leader = await fixture.cluster.waitForActive();
        killedId = leader.id;
        killedAt = Date.now();
        await leader.kill('SIGKILL');
      },
    };
    const outcomes: string[] = [];
    // As the scheduler does: a run that could not even read its record (no leader yet) is
    // tried again at the next tick.
    const attempt = () =>
      runRotation('api-key', driver, options).catch((error: unknown) => {
        if (error instanceof OpenBaoError && error.retryable) return { outcome: 'unreadable' };
        throw error;
      });
    let last: { outcome: string; resumed?: boolean } = await attempt();
    outcomes.push(last.outcome);
    const deadline = Date.now() + 30000;
    while (last.outcome !== 'rotated' && Date.now() < deadline) {
      await sleep(500);
      last = await attempt();
      outcomes.push(last.outcome);
    }
    process.stdout.write(
      `[cluster rotate] leader ${killedId} killed after promotion; outcomes ${outcomes.join(' → ')}; ` +
        `rotated ${Date.now() - killedAt} ms after the kill\n`,
    );
    expect(last).toMatchObject({ outcome: 'rotated', resumed: true });
    expect(await currentVersion()).toBe(before + 1);
    expect(await jobSees()).toBe(await latestApiKey());
    const state = await store.read('api-key');
    expect(state.record.run).toBeUndefined();
    expect(state.record.holder).toBeUndefined();
    await fixture.cluster.nodes.find((n) => n.id === killedId)?.start();
  });
});
