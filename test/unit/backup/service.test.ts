/**
 * The backup run with an in-memory KV and a fake snapshot source (the real-server suites are
 * test/integration/backup*.test.ts): the ship hook as a local command, retention, and the
 * stage a failure is reported at. Verification is replaced here only.
 */
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BackupServiceOptions, createBackupService } from '../../../src/backup/service.js';
import { OpenBaoError } from '../../../src/openbao/errors.js';
import { canaryValue } from '../../support/canary.js';
import { MemoryKv } from '../../support/memory-kv.js';

let dir: string;
let clock = Date.parse('2026-12-01T10:00:00.000Z');
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-backup-unit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function service(overrides: Partial<BackupServiceOptions> = {}, kv = new MemoryKv()) {
  const snapshotBytes = Buffer.from('not really a snapshot, but bytes to hash');
  return createBackupService({
    openbao: Object.assign(kv, {
      kvReadWrapped: () => Promise.reject(new Error('unused')),
      wrapData: () => Promise.reject(new Error('unused')),
      async saveSnapshot(destination: Writable) {
        await new Promise<void>((resolve, reject) =>
          destination.end(snapshotBytes, (error?: Error | null) =>
            error ? reject(error) : resolve(),
          ),
        );
        const { createHash } = await import('node:crypto');
        return {
          bytes: snapshotBytes.length,
          sha256: createHash('sha256').update(snapshotBytes).digest('hex'),
        };
      },
      restoreSnapshot: () => Promise.resolve(),
      clusterInfo: async () => ({ clusterId: 'c1', clusterName: 'n', version: '2.7.2' }),
    }),
    directory: dir,
    stateMount: 'secret',
    statePrefix: 'zsb',
    schedule: { everySeconds: 3600 },
    retention: { hourly: 2, daily: 0, weekly: 0, unverified: 1 },
    lockTtlSeconds: 60,
    verify: { binary: 'unused', sealKeyFile: 'unused', sealKeyId: 'k1', timeoutMs: 1000 },
    verifyToken: () => canaryValue('verify-token'),
    logger: quiet,
    now: () => clock,
    verifier: async () => ({ ok: true, seconds: 0.5, openbaoVersion: '2.7.2' }),
    ...overrides,
  });
}

describe('a backup run', () => {
  it('runs the ship hook with the two paths as arguments and in its environment, never a token', async () => {
    const hook = path.join(dir, 'hook.sh');
    const out = path.join(tmpdir(), `zsb-hook-${process.pid}-${Date.now()}.txt`);
    await writeFile(hook, `#!/bin/sh\n{ echo "$@"; env; } > ${out}\n`);
    await chmod(hook, 0o755);
    process.env.BAO_TOKEN = canaryValue('env-token');
    try {
      const outcome = await service({ hook: { command: [hook], timeoutMs: 5000 } }).run({
        force: true,
      });
      expect(outcome.outcome).toBe('verified');
      if (outcome.outcome !== 'verified') return;
      expect(outcome.shipped).toBe(true);
      const seen = await readFile(out, 'utf8');
      expect(seen.split('\n')[0]).toBe(`${outcome.file} ${outcome.file}.manifest.json`);
      expect(seen).toContain(`ZSB_BACKUP_FILE=${outcome.file}`);
      expect(seen).toContain(`ZSB_BACKUP_DIR=${dir}`);
      expect(seen).not.toContain('BAO_TOKEN');
      expect(seen).not.toContain('zsb-canary-');
    } finally {
      delete process.env.BAO_TOKEN;
      await rm(out, { force: true });
    }
  });

  it('a failing hook fails the run at stage ship; the snapshot stays verified', async () => {
    const outcome = await service({ hook: { command: ['false'], timeoutMs: 5000 } }).run({
      force: true,
    });
    expect(outcome).toMatchObject({ outcome: 'failed', stage: 'ship' });
    const names = await readdir(dir);
    expect(names.filter((n) => n.endsWith('.snap'))).toHaveLength(1);
  });

  it('applies retention after each run: only what the policy drops is deleted', async () => {
    const kv = new MemoryKv();
    const files: string[] = [];
    for (let i = 0; i < 4; i++) {
      clock += 3600_000;
      const outcome = await service({}, kv).run({ force: true });
      if (outcome.outcome !== 'verified') throw new Error(JSON.stringify(outcome));
      files.push(path.basename(outcome.file));
    }
    const left = (await readdir(dir)).filter((n) => n.endsWith('.snap')).sort();
    expect(left).toEqual(files.slice(-2).sort());
  });

  it('reports a failed verification at stage verify and keeps the manifest marked failed', async () => {
    const outcome = await service({
      verifier: async () => ({
        ok: false,
        seconds: 1,
        stage: 'restore',
        reason: 'OpenBao refused the restore',
        openbaoVersion: '2.7.2',
      }),
    }).run({ force: true });
    expect(outcome).toMatchObject({ outcome: 'failed', stage: 'verify' });
    if (outcome.outcome !== 'failed') return;
    expect(outcome.manifest?.verification?.result).toBe('failed');
  });

  it('reports OpenBao unreachable at stage snapshot and leaves no file behind', async () => {
    const broken = service({
      openbao: Object.assign(new MemoryKv(), {
        kvReadWrapped: () => Promise.reject(new Error('unused')),
        wrapData: () => Promise.reject(new Error('unused')),
        saveSnapshot: () => Promise.reject(new OpenBaoError('raft snapshot', 'unavailable', 0)),
        restoreSnapshot: () => Promise.resolve(),
        clusterInfo: async () => ({ clusterId: 'c1', clusterName: 'n', version: '2.7.2' }),
      }),
    });
    const failed = await broken.run({ force: true });
    expect(failed).toMatchObject({ outcome: 'failed', stage: 'snapshot' });
    expect(await readdir(dir)).toEqual([]);
  });

  it('reports a backup directory that does not exist at stage write', async () => {
    const outcome = await service({ directory: path.join(dir, 'missing') }).run({ force: true });
    expect(outcome).toMatchObject({ outcome: 'failed', stage: 'write' });
    if (outcome.outcome === 'failed') expect(outcome.reason).toContain('ENOENT');
  });

  it('the scheduler runs a due backup at once; stopping it ends a verification in flight', async () => {
    let verifying: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      verifying = resolve;
    });
    const outcomes: string[] = [];
    const s = service({
      verifier: async (_file, _manifest, _token, _settings, options) => {
        verifying();
        await new Promise<void>((resolve) =>
          options?.signal?.addEventListener('abort', () => resolve()),
        );
        return {
          ok: false,
          seconds: 0,
          stage: 'canary',
          reason: 'stopped: the broker is shutting down',
          openbaoVersion: '',
        };
      },
      onOutcome: (outcome) => {
        outcomes.push(outcome.outcome);
      },
    });
    const stop = s.schedule(3600);
    await started;
    const before = Date.now();
    await stop();
    expect(Date.now() - before).toBeLessThan(2000);
    expect(outcomes).toEqual(['failed']);
  });
});
