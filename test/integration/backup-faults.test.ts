/**
 * Backups under faults, against a real raft OpenBao: the backup directory full (a tiny
 * tmpfs) and read-only (remounted ro); OpenBao cut off in the middle of the snapshot and
 * refusing connections. Each fails loudly with its stage, older snapshots stay as they
 * were, nothing that looks complete is left, and a broker whose scheduled backups fail
 * keeps serving its jobs.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { listDirectory } from '../../src/backup/directory.js';
import { backupServiceFor } from '../../src/backup/settings.js';
import { parseConfig } from '../../src/config/load.js';
import { findBaoBinary } from '../../src/dev/openbao-dev-server.js';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { createLogger, startBroker } from '../../src/main.js';
import { createOpenBaoClient } from '../../src/openbao/client.js';
import { LogCapture } from '../support/app.js';
import {
  brokerTokenFile,
  type RaftSource,
  startRaftSource,
  writeSealKey,
} from '../support/backup-cluster.js';
import { canaryValue, registerSecretData } from '../support/canary.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { brokerCall, until } from '../support/http.js';
import { cloudsPolicy } from '../support/kv-broker.js';
import { runZsb } from '../support/process.js';

const AUDIENCE = 'https://secrets.example.org';
let dir: string;
let mountPoint: string;
let mounted = false;
let source: RaftSource;
let sealKey: string;
let token: string;
const prefix = `faults-${Date.now().toString(36)}`;

function configDoc(directory: string, extra: Record<string, unknown> = {}) {
  return {
    issuers: [{ issuer: 'https://zuul.example.org', audience: AUDIENCE }],
    openbao: {
      address: source.address,
      auth: { method: 'token', tokenFile: path.join(dir, 'token') },
    },
    policies: path.join(dir, 'policies'),
    audit: { file: path.join(dir, 'audit.jsonl') },
    backup: {
      directory,
      every: '1h',
      lockTtlSeconds: 30,
      verify: { sealKeyFile: sealKey, sealKeyId: 'k1', timeoutSeconds: 60 },
    },
    ...extra,
  };
}

async function backupInto(directory: string) {
  const file = path.join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, stringify(configDoc(directory)));
  return runZsb(['backup', '--config', file], { cwd: dir });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-backup-faults-'));
  mountPoint = path.join(dir, 'small');
  await Promise.all(
    [mountPoint, path.join(dir, 'policies'), path.join(dir, 'seal')].map((d) => mkdir(d)),
  );
  // A tiny file system: room for one snapshot of this small cluster and little more.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=160k,mode=0700', 'tmpfs', mountPoint]);
  mounted = true;
  sealKey = await writeSealKey(path.join(dir, 'seal', 'k1.key'));
  source = await startRaftSource({ dir: path.join(dir, 'source'), sealKeyFile: sealKey });
  token = await brokerTokenFile(source, prefix, path.join(dir, 'token'));
}, 60000);

afterAll(async () => {
  if (mounted) execFileSync('umount', ['-l', mountPoint]);
  await source?.node.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('backups under faults', () => {
  it('a full backup directory: fails at write (ENOSPC), the older snapshot stays, no partial file', async () => {
    const first = await backupInto(mountPoint);
    expect(first.stdout, first.stderr).toMatch(/^verified: /);
    const before = await listDirectory(mountPoint);
    expect(before.snapshots).toHaveLength(1);
    // Fill what is left.
    try {
      await writeFile(path.join(mountPoint, 'ballast'), Buffer.alloc(1024 * 1024));
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    const full = await backupInto(mountPoint);
    expect(full.stdout).toMatch(/^failed at write: .*ENOSPC/);
    expect(full.code).toBe(1);
    const after = await listDirectory(mountPoint);
    expect(after.snapshots.map((s) => s.manifest.sha256)).toEqual(
      before.snapshots.map((s) => s.manifest.sha256),
    );
    expect(after.incomplete).toEqual([]);
    expect((await readdir(mountPoint)).filter((n) => n.startsWith('.zsb-tmp-'))).toEqual([]);
    await rm(path.join(mountPoint, 'ballast'));
  }, 90000);

  it('a read-only backup directory: fails at write (EROFS), the older snapshot stays', async () => {
    execFileSync('mount', ['-o', 'remount,ro', mountPoint]);
    try {
      const ro = await backupInto(mountPoint);
      expect(ro.stdout).toMatch(/^failed at write: .*EROFS/);
      expect(ro.code).toBe(1);
      expect((await listDirectory(mountPoint)).snapshots).toHaveLength(1);
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', mountPoint]);
    }
  }, 60000);

  it('OpenBao cut off mid-snapshot or refusing connections: fails at snapshot, nothing left behind', async () => {
    const proxy = await FaultProxy.start(source.address);
    const healthy = path.join(dir, 'healthy');
    await mkdir(healthy);
    const kv = createOpenBaoClient({
      addresses: [source.address],
      timeoutMs: 5000,
      maxConnections: 4,
      token: () => token,
    });
    // Snapshots through the proxy; KV (canary, lock) directly.
    const config = parseConfig({
      ...configDoc(healthy),
      openbao: {
        address: proxy.url,
        auth: { method: 'token', tokenFile: path.join(dir, 'token') },
      },
    });
    if (config.backup === undefined) throw new Error('no backup section');
    const service = backupServiceFor({
      config: { openbao: config.openbao, backup: config.backup },
      openbao: kv,
      brokerToken: () => token,
      defaultBinary: () => findBaoBinary(),
      logger: createLogger('silent'),
    });
    try {
      await proxy.setMode({ kind: 'reset', bytes: 2000 });
      const cut = await service.run({ force: true });
      expect(cut).toMatchObject({ outcome: 'failed', stage: 'snapshot' });
      await proxy.setMode({ kind: 'refuse' });
      const refused = await service.run({ force: true });
      expect(refused).toMatchObject({ outcome: 'failed', stage: 'snapshot' });
      if (refused.outcome === 'failed') expect(refused.reason).toContain('unavailable');
      expect(await readdir(healthy)).toEqual([]);
    } finally {
      await proxy.close();
    }
  }, 60000);

  it('a broker whose scheduled backups fail keeps serving jobs, and says so in /metrics', async () => {
    const secret = { username: 'ci', password: canaryValue('faults') };
    registerSecretData(secret);
    await source.admin.kvWrite('secret', `${prefix}/clouds`, secret);
    await writeFile(path.join(dir, 'policies', 'p.yaml'), cloudsPolicy(prefix, 'faults'));
    const issuer = await ZuulIssuer.start({ modulusLength: 2048 });
    execFileSync('mount', ['-o', 'remount,ro', mountPoint]);
    // The record as after one good backup long ago: due now, no failures to back off from.
    const verifiedAt = new Date(Date.now() - 2 * 3600_000).toISOString();
    await source.admin.kvWrite('secret', 'zsb/backup/state', {
      failures: 0,
      lastSuccessAt: verifiedAt,
      lastVerifiedAt: verifiedAt,
    });
    const logs = new LogCapture();
    const broker = await startBroker(
      parseConfig({
        ...configDoc(mountPoint),
        listen: { host: '127.0.0.1', port: 0 },
        issuers: [{ issuer: issuer.issuer, audience: AUDIENCE }],
        watchPolicies: false,
        rotation: { enabled: false },
        backup: { ...configDoc(mountPoint).backup, checkIntervalSeconds: 1 },
      }),
      { logger: createLogger('info', logs) },
    );
    try {
      await until(async () => {
        const metrics = await (await fetch(`${broker.url}/metrics`)).text();
        return /zsb_backup_failures_total\{stage="write"\} [1-9]/.test(metrics);
      }, 30000);
      const res = await brokerCall(broker.url, 'POST', '/v1/fetch', issuer.mint(), {
        secrets: ['clouds'],
      });
      expect(res.status).toBe(200);
      expect(res.body.secrets).toMatchObject({ clouds: { data: secret } });
      const metrics = await (await fetch(`${broker.url}/metrics`)).text();
      // The last verified backup (from the first test) is known to every instance.
      expect(metrics).toMatch(/zsb_backup_last_verified_timestamp_seconds \d{10}/);
    } finally {
      await broker.close();
      await issuer.close();
      execFileSync('mount', ['-o', 'remount,rw', mountPoint]);
    }
  }, 90000);
});
