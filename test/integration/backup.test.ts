/**
 * `zsb backup` against a real single-node raft OpenBao with the static seal: a verified
 * snapshot and its manifest; `list`; `verify` of truncated, altered and wrong-seal copies
 * (each refused with its reason and exit 1); two instances at once; a SIGKILL mid-write.
 */
import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CANARY_VALUE_PREFIX } from '../../src/backup/canary.js';
import { readManifestOf } from '../../src/backup/directory.js';
import { verifySnapshot } from '../../src/backup/verify.js';
import { findBaoBinary } from '../../src/dev/openbao-dev-server.js';
import {
  brokerTokenFile,
  type RaftSource,
  startRaftSource,
  writeSealKey,
} from '../support/backup-cluster.js';
import { exitOf, runZsb, spawnZsb, waitForOutput } from '../support/process.js';
import { uniquePrefix } from '../support/real-openbao.js';

let dir: string;
let source: RaftSource;
let configFile: string;
let backupDir: string;
let sealKey: string;

function configDoc(
  overrides: { sealKeyFile?: string; address?: string; lockTtlSeconds?: number } = {},
) {
  return {
    issuers: [{ issuer: 'https://zuul.example.org', audience: 'https://secrets.example.org' }],
    openbao: {
      address: overrides.address ?? source.address,
      auth: { method: 'token', tokenFile: path.join(dir, 'token') },
    },
    policies: path.join(dir, 'policies'),
    audit: { file: path.join(dir, 'audit.jsonl') },
    backup: {
      directory: backupDir,
      every: '1h',
      ...(overrides.lockTtlSeconds ? { lockTtlSeconds: overrides.lockTtlSeconds } : {}),
      verify: {
        sealKeyFile: overrides.sealKeyFile ?? sealKey,
        sealKeyId: 'k1',
        timeoutSeconds: 60,
      },
    },
  };
}

const backup = (...args: string[]) =>
  runZsb(['backup', ...args, '--config', configFile], { cwd: dir });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-backup-'));
  backupDir = path.join(dir, 'backups');
  await mkdir(backupDir);
  await mkdir(path.join(dir, 'policies'));
  await mkdir(path.join(dir, 'seal'));
  sealKey = await writeSealKey(path.join(dir, 'seal', 'k1.key'));
  source = await startRaftSource({ dir: path.join(dir, 'source'), sealKeyFile: sealKey });
  await brokerTokenFile(source, uniquePrefix('backup'), path.join(dir, 'token'));
  configFile = path.join(dir, 'config.yaml');
  await writeFile(configFile, stringify(configDoc()));
}, 60000);

afterAll(async () => {
  await source?.node.stop();
  await rm(dir, { recursive: true, force: true });
});

async function snapshotsIn(directory: string): Promise<string[]> {
  return (await readdir(directory)).filter((n) => n.endsWith('.snap')).sort();
}

describe('zsb backup against a real raft OpenBao', () => {
  let firstSnapshot: string;

  it('takes a snapshot, restores it into a scratch node, reads the canary back, marks it verified', async () => {
    const result = await backup();
    expect(result.stdout, result.stderr).toMatch(/^verified: .*\.snap \(\d+ bytes/);
    expect(result.code).toBe(0);
    const [name] = await snapshotsIn(backupDir);
    expect(name).toBeDefined();
    firstSnapshot = path.join(backupDir, name ?? '');
    const manifest = await readManifestOf(firstSnapshot);
    expect(manifest.verification?.result).toBe('verified');
    expect(manifest.canary.path).toBe('zsb/backup/canary');
    expect(manifest.openbaoVersion).toMatch(/^2\./);
    expect(manifest.cluster.id).not.toBe('');
    // The manifest names the canary and hashes its value; the value is in OpenBao only.
    const text = await readFile(`${firstSnapshot}.manifest.json`, 'utf8');
    expect(text).not.toContain(CANARY_VALUE_PREFIX);
    const canary = await source.admin.kvRead('secret', 'zsb/backup/canary');
    expect(canary?.version).toBe(manifest.canary.version);
    expect(text).not.toContain(String(canary?.data.value));
    // The audit event of the run.
    const audit = await readFile(path.join(dir, 'audit.jsonl'), 'utf8');
    expect(audit).toContain('"event":"backup.snapshot","outcome":"verified"');
    expect(audit).toContain(manifest.sha256);
    const listed = await backup('list');
    expect(listed.stdout).toContain(`${name}  age`);
    expect(listed.stdout).toContain('verified');
    expect(listed.code).toBe(0);
  }, 60000);

  it('refuses a truncated copy, an altered copy and a wrong-seal config, each with its reason', async () => {
    const truncated = path.join(dir, 'truncated.snap');
    await copyFile(firstSnapshot, truncated);
    await copyFile(`${firstSnapshot}.manifest.json`, `${truncated}.manifest.json`);
    // The manifest names its own file: point it at the copy.
    const fixName = async (copy: string) => {
      const m = JSON.parse(await readFile(`${copy}.manifest.json`, 'utf8'));
      m.file = path.basename(copy);
      await writeFile(`${copy}.manifest.json`, JSON.stringify(m));
    };
    await fixName(truncated);
    const size = (await readFile(truncated)).length;
    await truncate(truncated, Math.floor(size / 2));
    const t = await backup('verify', truncated);
    expect(t.stdout).toContain('NOT verified');
    expect(t.stdout).toContain('truncated or altered');
    expect(t.code).toBe(1);

    const altered = path.join(dir, 'altered.snap');
    const bytes = await readFile(firstSnapshot);
    bytes[Math.floor(bytes.length / 2)] = (bytes[Math.floor(bytes.length / 2)] ?? 0) ^ 0xff;
    await writeFile(altered, bytes);
    await copyFile(`${firstSnapshot}.manifest.json`, `${altered}.manifest.json`);
    await fixName(altered);
    const a = await backup('verify', altered);
    expect(a.stdout).toContain('SHA-256 differs from its manifest');
    expect(a.code).toBe(1);

    // The same files restored regardless of the manifest: OpenBao itself refuses them.
    const settings = {
      binary: findBaoBinary(),
      sealKeyFile: sealKey,
      sealKeyId: 'k1',
      timeoutMs: 30000,
    };
    const token = (await readFile(path.join(dir, 'token'), 'utf8')).trim();
    const manifest = await readManifestOf(truncated);
    const direct = await verifySnapshot(truncated, manifest, token, settings, {
      skipFileCheck: true,
    });
    expect(direct).toMatchObject({ ok: false, stage: 'restore' });
    expect(direct.ok ? '' : direct.reason).toContain('refused the restore');

    const otherKey = await writeSealKey(path.join(dir, 'seal', 'k2.key'));
    const wrongSeal = path.join(dir, 'wrong-seal.yaml');
    await writeFile(wrongSeal, stringify(configDoc({ sealKeyFile: otherKey })));
    const w = await runZsb(['backup', 'verify', firstSnapshot, '--config', wrongSeal], {
      cwd: dir,
    });
    expect(w.stdout).toContain('another seal key');
    expect(w.code).toBe(1);

    // `zsb backup restore` refuses the altered copy before touching any cluster.
    await writeFile(path.join(dir, 'target-token'), 'unused-token', { mode: 0o600 });
    const restoreArgs = [
      '--address',
      'http://127.0.0.1:1',
      '--token-file',
      path.join(dir, 'target-token'),
    ];
    const r = await runZsb(['backup', 'restore', altered, ...restoreArgs], { cwd: dir });
    expect(r.stderr).toContain('SHA-256 differs from its manifest');
    expect(r.code).toBe(1);
    // … and a snapshot whose manifest does not say verified, unless told to.
    const m = JSON.parse(await readFile(`${truncated}.manifest.json`, 'utf8'));
    delete m.verification;
    await writeFile(`${truncated}.manifest.json`, JSON.stringify(m));
    const u = await runZsb(['backup', 'restore', truncated, ...restoreArgs], { cwd: dir });
    expect(u.stderr).toContain('is not verified');
    expect(u.code).toBe(1);

    const good = await backup('verify', firstSnapshot);
    expect(good.stdout).toContain('verified:');
    expect(good.code).toBe(0);
  }, 90000);

  it('lets one of two instances started together take the backup; the other says busy', async () => {
    const [one, two] = await Promise.all([backup(), backup()]);
    const outputs = [one.stdout, two.stdout].sort();
    expect(outputs[0]).toContain('another instance holds the backup lock');
    expect(outputs[1]).toMatch(/^verified:/);
    expect([one.code, two.code].sort()).toEqual([0, 1]);
    // --due: busy or not due is fine for a timer.
    const due = await backup('--due');
    expect(due.stdout).toContain('not due');
    expect(due.code).toBe(0);
  }, 60000);

  it('leaves nothing that looks complete after a SIGKILL mid-write', async () => {
    const before = await snapshotsIn(backupDir);
    // A lock that expires at once: the second run must not wait for the killed first one.
    const shortLock = path.join(dir, 'short-lock.yaml');
    await writeFile(shortLock, stringify(configDoc({ lockTtlSeconds: 1 })));
    for (const at of ['snapshot-streamed', 'snapshot-renamed']) {
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const child = spawnZsb(['backup', '--config', shortLock], {
        cwd: dir,
        env: { ZSB_BACKUP_PAUSE_AT: at },
      });
      await waitForOutput(child, /paused at/, 30000, 'stderr');
      child.kill('SIGKILL');
      await exitOf(child);
    }
    const listed = await backup('list', '--json');
    const listing = JSON.parse(listed.stdout) as {
      snapshots: { path: string }[];
      incomplete: { path: string; reason: string }[];
    };
    // Only the verified ones from before count; the renamed one has no manifest.
    expect(listing.snapshots.map((s) => path.basename(s.path)).sort()).toEqual(before);
    expect(listing.incomplete).toHaveLength(1);
    const names = await readdir(backupDir);
    expect(names.filter((n) => n.startsWith('.zsb-tmp-'))).toHaveLength(1);
  }, 60000);
});
