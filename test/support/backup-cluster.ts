/**
 * Raft OpenBao nodes for the backup suites: single nodes with the static seal (a snapshot of
 * `bao server -dev` cannot be restored under a static seal, and the in-memory dev server
 * has no snapshots at all), started from the pinned binary. Each suite gets its own nodes,
 * seal key and directories; a node that cannot start fails the suite (never skipped).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type ScratchOpenBao, startScratchOpenBao } from '../../src/backup/scratch-openbao.js';
import { findBaoBinary } from '../../src/dev/openbao-dev-server.js';
import { createOpenBaoClient } from '../../src/openbao/client.js';
import { registerCanary } from './canary.js';
import { baoRequest } from './real-openbao.js';

export async function writeSealKey(file: string): Promise<string> {
  await writeFile(file, randomBytes(32), { mode: 0o600 });
  return file;
}

/** The ACL a broker that serves `prefix` and takes backups needs (see `zsb policy compile --backup`). */
export function brokerAcl(prefix: string, statePrefix = 'zsb'): string {
  return `path "secret/data/${prefix}/*" { capabilities = ["read"] }
path "secret/data/${statePrefix}/backup/*" { capabilities = ["create", "read", "update"] }
path "sys/storage/raft/snapshot" { capabilities = ["read"] }
`;
}

export interface RaftSource {
  readonly node: ScratchOpenBao;
  readonly address: string;
  readonly rootToken: string;
  admin: ReturnType<typeof createOpenBaoClient>;
}

/** A fresh single raft node with KV v2 at `secret/`, its data kept in `dataDir`. */
export async function startRaftSource(options: {
  readonly dir: string;
  readonly sealKeyFile: string;
  readonly sealKeyId?: string;
}): Promise<RaftSource> {
  const dataDir = path.join(options.dir, 'data');
  await mkdir(dataDir, { recursive: true });
  const node = await startScratchOpenBao({
    binary: findBaoBinary(),
    sealKeyFile: options.sealKeyFile,
    sealKeyId: options.sealKeyId ?? 'k1',
    parentDir: options.dir,
    dataDir,
  });
  const { rootToken } = await node.initialize();
  registerCanary(rootToken);
  const mounted = await baoRequest(node.address, 'POST', 'sys/mounts/secret', {
    token: rootToken,
    body: { type: 'kv', options: { version: '2' } },
  });
  if (mounted.status !== 204 && mounted.status !== 200) {
    throw new Error(`enabling KV v2 on the raft node failed: HTTP ${mounted.status}`);
  }
  const admin = createOpenBaoClient({
    addresses: [node.address],
    timeoutMs: 10000,
    maxConnections: 8,
    token: () => rootToken,
  });
  // A fresh KV v2 mount answers 400 "upgrading" for a moment: wait until a write lands.
  const deadline = Date.now() + 15000;
  for (;;) {
    try {
      await admin.kvWrite('secret', 'zsb-ready', { ok: 'yes' });
      break;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return { node, address: node.address, rootToken, admin };
}

/** A broker token (orphan, 1 h) with `brokerAcl(prefix)`, written to `file` (0600). */
export async function brokerTokenFile(
  source: RaftSource,
  prefix: string,
  file: string,
): Promise<string> {
  await source.admin.putAclPolicy(`zsb-${prefix}`, brokerAcl(prefix));
  const { token } = await source.admin.createToken({
    policies: [`zsb-${prefix}`],
    ttlSeconds: 3600,
    orphan: true,
  });
  registerCanary(token);
  await writeFile(file, token, { mode: 0o600 });
  return token;
}
