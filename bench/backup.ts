/**
 * Benchmark: snapshot and verification of a raft OpenBao holding 10,000 KV v2 secrets
 * (issue #14). A single raft node with the static seal on loopback (the pinned binary),
 * 10,000 secrets of about 180 bytes written with 16 in flight, then `runs` backups as
 * `zsb backup` takes them (canary, streamed snapshot, manifest, restore into a scratch node,
 * canary read back). Prints the load time, the snapshot size, and per run the snapshot
 * download and verification times; then restores the newest snapshot into a fresh 3-node
 * cluster with the same seal key (the runbook) and times it. Bounded: everything on
 * 127.0.0.1, removed after.
 *
 *   npx tsx bench/backup.ts [secrets] [runs]
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startScratchOpenBao } from '../src/backup/scratch-openbao.js';
import { createBackupService } from '../src/backup/service.js';
import { startOpenBaoCluster } from '../src/dev/openbao-cluster.js';
import { findBaoBinary } from '../src/dev/openbao-dev-server.js';
import { createOpenBaoClient } from '../src/openbao/client.js';
import { createSnapshotTransfer } from '../src/openbao/snapshot.js';

const SECRETS = Math.min(100_000, Number(process.argv[2] ?? 10_000));
const RUNS = Math.min(10, Number(process.argv[3] ?? 3));
const CONCURRENCY = 16;

const dir = await mkdtemp(path.join(os.tmpdir(), 'zsb-bench-backup-'));
const node = await (async () => {
  const sealKeyFile = path.join(dir, 'k1.key');
  await writeFile(sealKeyFile, randomBytes(32), { mode: 0o600 });
  await mkdir(path.join(dir, 'backups'));
  return {
    sealKeyFile,
    server: await startScratchOpenBao({
      binary: findBaoBinary(),
      sealKeyFile,
      sealKeyId: 'k1',
      parentDir: dir,
      dataDir: path.join(dir, 'data'),
    }),
  };
})();

try {
  const { rootToken } = await node.server.initialize();
  const address = node.server.address;
  const client = createOpenBaoClient({
    addresses: [address],
    timeoutMs: 10000,
    maxConnections: CONCURRENCY,
    token: () => rootToken,
  });
  await fetch(`${address}/v1/sys/mounts/secret`, {
    method: 'POST',
    headers: { 'X-Vault-Token': rootToken, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'kv', options: { version: '2' } }),
  });
  for (let ready = false; !ready; ) {
    ready = await client.kvWrite('secret', 'ready', { ok: 'y' }).then(
      () => true,
      () => false,
    );
  }

  const loadStarted = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < SECRETS; i = next++) {
        await client.kvWrite('secret', `bench/bulk/s${i}`, {
          username: `svc${i}`,
          password: randomBytes(48).toString('base64'),
          url: `https://service-${i}.example.org/api/v1`,
        });
      }
    }),
  );
  const loadSeconds = (performance.now() - loadStarted) / 1000;

  const transfer = createSnapshotTransfer({
    addresses: [address],
    timeoutMs: 600_000,
    maxBytes: 8 * 2 ** 30,
    token: () => rootToken,
  });
  const service = createBackupService({
    openbao: {
      kvRead: client.kvRead,
      kvReadWrapped: client.kvReadWrapped,
      wrapData: client.wrapData,
      kvWrite: client.kvWrite,
      saveSnapshot: transfer.saveSnapshot,
      restoreSnapshot: transfer.restoreSnapshot,
      clusterInfo: transfer.clusterInfo,
    },
    directory: path.join(dir, 'backups'),
    stateMount: 'secret',
    statePrefix: 'zsb',
    schedule: { everySeconds: 3600 },
    retention: { hourly: 24, daily: 7, weekly: 4, unverified: 2 },
    lockTtlSeconds: 900,
    verify: {
      binary: findBaoBinary(),
      sealKeyFile: node.sealKeyFile,
      sealKeyId: 'k1',
      timeoutMs: 300_000,
      scratchDir: dir,
    },
    verifyToken: () => rootToken,
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });

  process.stdout.write(
    `${SECRETS} secrets written in ${loadSeconds.toFixed(1)} s (${Math.round(SECRETS / loadSeconds)}/s, ${CONCURRENCY} in flight)\n`,
  );
  process.stdout.write('| run | snapshot bytes | snapshot s | verification s | whole run s |\n');
  process.stdout.write('| --- | --- | --- | --- | --- |\n');
  for (let run = 1; run <= RUNS; run++) {
    const started = performance.now();
    const outcome = await service.run({ force: true });
    const whole = (performance.now() - started) / 1000;
    if (outcome.outcome !== 'verified') {
      throw new Error(`run ${run} not verified: ${JSON.stringify(outcome)}`);
    }
    const m = outcome.manifest;
    process.stdout.write(
      `| ${run} | ${m.bytes} (${(m.bytes / 2 ** 20).toFixed(1)} MiB) | ${m.snapshotSeconds.toFixed(2)} | ${m.verification?.seconds.toFixed(2)} | ${whole.toFixed(2)} |\n`,
    );
  }
  // The restore of the last snapshot into a fresh 3-node cluster with the same seal key, as
  // in the runbook: until every node holds it and the source's token reads the canary.
  const listing = await service.list();
  const newest = listing.snapshots[0];
  if (newest === undefined) throw new Error('no snapshot to restore');
  const clusterStarted = performance.now();
  const cluster = await startOpenBaoCluster({
    parentDir: dir,
    prepareDataDir: async (_id, dataDir) => {
      await copyFile(
        node.sealKeyFile,
        path.join(path.dirname(path.dirname(dataDir)), 'unseal-k1.key'),
      );
    },
  });
  try {
    const clusterSeconds = (performance.now() - clusterStarted) / 1000;
    const active = await cluster.waitForActive();
    const restoreStarted = performance.now();
    await createSnapshotTransfer({
      addresses: [active.address],
      timeoutMs: 600_000,
      maxBytes: 8 * 2 ** 30,
      token: () => cluster.rootToken,
    }).restoreSnapshot(newest.path, cluster.rootToken);
    const callSeconds = (performance.now() - restoreStarted) / 1000;
    const readers = cluster.nodes.map((n) =>
      createOpenBaoClient({
        addresses: [n.address],
        timeoutMs: 2000,
        maxConnections: 1,
        maxAttempts: 1,
        token: () => rootToken,
      }),
    );
    const readable = async () => {
      const entries = await Promise.all(
        readers.map((r) => r.kvRead('secret', 'zsb/backup/canary').catch(() => null)),
      );
      return entries.every((e) => e?.version === newest.manifest.canary.version);
    };
    while (!(await readable())) {
      if (performance.now() - restoreStarted > 120_000)
        throw new Error('restore not readable in 120 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const restoreSeconds = (performance.now() - restoreStarted) / 1000;
    process.stdout.write(
      `restore of ${(newest.manifest.bytes / 2 ** 20).toFixed(1)} MiB into a new 3-node cluster: cluster up ${clusterSeconds.toFixed(1)} s, restore call ${callSeconds.toFixed(2)} s, canary readable on all 3 nodes after ${restoreSeconds.toFixed(1)} s\n`,
    );
  } finally {
    await cluster.stop();
  }
} finally {
  await node.server.stop();
  await rm(dir, { recursive: true, force: true });
}
