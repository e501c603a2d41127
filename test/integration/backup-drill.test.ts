/**
 * The restore drill (docs/backup-and-restore.md): a real 3-node raft cluster
 * (src/dev/openbao-cluster.ts) behind a real broker; jobs fetch their secrets; `zsb backup`
 * takes a verified snapshot and ships it (a local `cp` as the hook); every node, its data and
 * the backup directory are destroyed; a new 3-node cluster is started with nothing but the
 * seal key; `zsb backup restore` loads the off-site copy; a new broker with the old broker
 * token serves the same jobs the same secrets. Measures the restore.
 */
import { cp, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { type OpenBaoCluster, startOpenBaoCluster } from '../../src/dev/openbao-cluster.js';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { createLogger, type RunningBroker, startBroker } from '../../src/main.js';
import { createOpenBaoClient } from '../../src/openbao/client.js';
import { LogCapture } from '../support/app.js';
import { brokerAcl } from '../support/backup-cluster.js';
import { canaryValue, registerCanary, registerSecretData } from '../support/canary.js';
import { brokerCall } from '../support/http.js';
import { cloudsPolicy } from '../support/kv-broker.js';
import { runZsb } from '../support/process.js';

const AUDIENCE = 'https://secrets.example.org';
const prefix = `drill-${Date.now().toString(36)}`;
const cleanups: (() => Promise<unknown>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

function rootClient(cluster: OpenBaoCluster) {
  return createOpenBaoClient({
    addresses: cluster.nodes.map((n) => n.address),
    timeoutMs: 10000,
    maxConnections: 4,
    token: () => cluster.rootToken,
  });
}

describe('restore drill: destroy every node, restore from the file and the seal key alone', () => {
  it('serves the same jobs the same secrets through the broker after the restore', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'zsb-drill-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const backups = path.join(dir, 'backups');
    const escrow = path.join(dir, 'seal-escrow'); // apart from the snapshots, as the runbook says
    const offsite = path.join(dir, 'offsite'); // what the ship hook copies to
    await Promise.all([backups, escrow, offsite, path.join(dir, 'policies')].map((d) => mkdir(d)));

    // --- the cluster in production, and the broker in front of it
    const old = await startOpenBaoCluster({ parentDir: dir });
    cleanups.push(() => old.stop());
    registerCanary(old.rootToken);
    const sealKey = path.join(escrow, 'k1.key');
    await cp(path.join(old.dir, 'unseal-k1.key'), sealKey);
    const admin = rootClient(old);
    const secret = { username: 'ci', password: canaryValue('drill') };
    registerSecretData(secret);
    await admin.kvWrite('secret', `${prefix}/clouds`, secret);
    await admin.putAclPolicy(
      `zsb-${prefix}`,
      `${brokerAcl(prefix)}path "sys/storage/raft/autopilot/state" { capabilities = ["read"] }\n`,
    );
    const brokerToken = await admin.createToken({
      policies: [`zsb-${prefix}`],
      ttlSeconds: 3600,
      orphan: true,
    });
    registerCanary(brokerToken.token);
    await writeFile(path.join(dir, 'token'), brokerToken.token, { mode: 0o600 });
    await writeFile(path.join(dir, 'policies', 'p.yaml'), cloudsPolicy(prefix, 'drill'));
    const issuer = await ZuulIssuer.start({ modulusLength: 2048 });
    cleanups.push(() => issuer.close());
    const logs = new LogCapture();
    const configFor = (cluster: OpenBaoCluster) => ({
      listen: { host: '127.0.0.1', port: 0 },
      issuers: [{ issuer: issuer.issuer, audience: AUDIENCE }],
      openbao: {
        addresses: cluster.nodes.map((n) => n.address),
        auth: { method: 'token', tokenFile: path.join(dir, 'token') },
      },
      policies: path.join(dir, 'policies'),
      watchPolicies: false,
      rotation: { enabled: false },
      audit: { file: path.join(dir, 'audit.jsonl') },
      backup: {
        enabled: false,
        directory: backups,
        every: '1h',
        verify: { sealKeyFile: sealKey, sealKeyId: 'k1', timeoutSeconds: 90 },
        // The off-site copy: a local command standing in for rclone/s3cmd.
        hook: { command: ['cp', '-t', offsite] },
      },
    });
    const fetchAs = async (broker: RunningBroker, build: string) =>
      brokerCall(broker.url, 'POST', '/v1/fetch', issuer.mint({ 'build-uuid': build }), {
        secrets: ['clouds'],
      });
    let broker = await startBroker(parseConfig(configFor(old)), {
      logger: createLogger('info', logs),
    });
    const before = await fetchAs(broker, 'a'.repeat(32));
    expect(before.status).toBe(200);
    expect(before.body.secrets).toMatchObject({ clouds: { data: secret } });

    // --- a verified backup, taken the way a timer would
    const configFile = path.join(dir, 'config.yaml');
    await writeFile(configFile, stringify(configFor(old)));
    const taken = await runZsb(['backup', '--config', configFile], { cwd: dir });
    expect(taken.stdout, taken.stderr).toMatch(/^verified: .*shipped/);
    const local = taken.stdout.slice('verified: '.length).split(' (')[0] ?? '';
    // Restored from the off-site copy: the machine with the backup directory is gone too.
    const file = path.join(offsite, path.basename(local));
    // Written after the snapshot: lost by the restore, as the runbook says.
    await admin.kvWrite('secret', `${prefix}/after-snapshot`, { note: 'lost' });

    // --- disaster: every node and its data gone, the broker too
    await broker.close();
    await old.stop();
    await rm(backups, { recursive: true });
    await expect(stat(old.dir)).rejects.toMatchObject({ code: 'ENOENT' });

    // --- a new cluster from nothing but the seal key, then the file
    const started = performance.now();
    const fresh = await startOpenBaoCluster({
      parentDir: dir,
      // The harness makes a key per cluster; the restore needs the escrowed one instead.
      prepareDataDir: async (_node, dataDir) => {
        await cp(sealKey, path.join(path.dirname(path.dirname(dataDir)), 'unseal-k1.key'));
      },
    });
    cleanups.push(() => fresh.stop());
    registerCanary(fresh.rootToken);
    const clusterUp = performance.now();
    const active = await fresh.waitForActive();
    await writeFile(path.join(dir, 'new-root'), fresh.rootToken, { mode: 0o600 });
    const restored = await runZsb(
      [
        'backup',
        'restore',
        file,
        '--address',
        active.address,
        '--token-file',
        path.join(dir, 'new-root'),
      ],
      { cwd: dir },
    );
    expect(restored.stdout, restored.stderr).toContain('restored ');
    expect(restored.code).toBe(0);
    const restoredAt = performance.now();

    broker = await startBroker(parseConfig(configFor(fresh)), {
      logger: createLogger('info', logs),
    });
    cleanups.push(() => broker.close());
    // The same job, the same secret, with the broker token of the old cluster.
    let after = await fetchAs(broker, 'b'.repeat(32));
    const deadline = Date.now() + 30000;
    while (after.status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      after = await fetchAs(broker, 'b'.repeat(32));
    }
    const serving = performance.now();
    expect(after.status).toBe(200);
    expect(after.body.secrets).toEqual(before.body.secrets);
    // What was written after the snapshot is gone; the new cluster's own root token too.
    const asBroker = createOpenBaoClient({
      addresses: fresh.nodes.map((n) => n.address),
      timeoutMs: 5000,
      maxConnections: 2,
      token: () => brokerToken.token,
    });
    expect(await asBroker.kvRead('secret', `${prefix}/clouds`)).not.toBeNull();
    expect(await asBroker.kvRead('secret', `${prefix}/after-snapshot`)).toBeNull();
    await expect(rootClient(fresh).kvRead('secret', `${prefix}/clouds`)).rejects.toMatchObject({
      kind: 'permission_denied',
    });
    const seconds = (ms: number) => (ms / 1000).toFixed(1);
    process.stdout.write(
      `restore drill: new 3-node cluster ${seconds(clusterUp - started)} s, restore ${seconds(restoredAt - clusterUp)} s, broker serving again ${seconds(serving - started)} s after the start of the recovery\n`,
    );
  }, 240000);
});
