/**
 * `zsb backup [--due]`, `zsb backup list`, `zsb backup verify FILE`, `zsb backup restore FILE`:
 * OpenBao snapshots taken, verified and restored as docs/backup-and-restore.md describes.
 * `zsb backup` acts as the broker (its configuration, credential and lock); `restore` is an
 * admin action with a token of the target cluster (sudo on sys/storage/raft/snapshot).
 *
 * ZSB_BACKUP_PAUSE_AT=<boundary> stops a backup at that point until the process is killed:
 * the crash tests SIGKILL a real backup mid-write.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { openAuditLog } from '../audit/log.js';
import { listDirectory, readManifestOf } from '../backup/directory.js';
import { isVerified } from '../backup/manifest.js';
import { auditedBackup } from '../backup/scheduler.js';
import type { BackupService } from '../backup/service.js';
import { backupServiceFor, readTokenFile } from '../backup/settings.js';
import { BACKUP_BOUNDARIES, type BackupBoundary, type BackupOutcome } from '../backup/types.js';
import { checkFile, verifySnapshot } from '../backup/verify.js';
import { loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { findBaoBinary } from '../dev/openbao-dev-server.js';
import { createLogger } from '../main.js';
import { createOpenBaoClient } from '../openbao/client.js';
import { connectOpenBao } from '../openbao/connect.js';
import { createSnapshotTransfer } from '../openbao/snapshot.js';
import { configFile } from './rotate.js';

function backupConfig(config: Config) {
  if (config.backup === undefined) throw new Error('no backup: section in the configuration');
  return { ...config, backup: config.backup };
}

function pauseHook(): ((b: BackupBoundary) => Promise<void>) | undefined {
  const at = process.env.ZSB_BACKUP_PAUSE_AT;
  if (!at) return undefined;
  if (!BACKUP_BOUNDARIES.includes(at as BackupBoundary)) {
    throw new Error(`ZSB_BACKUP_PAUSE_AT must be one of ${BACKUP_BOUNDARIES.join(', ')}`);
  }
  return async (boundary) => {
    if (boundary !== at) return;
    process.stderr.write(`zsb: paused at ${boundary}\n`);
    // Until killed; the timer keeps the event loop (and so the process) alive.
    await new Promise(() => setInterval(() => undefined, 1 << 30));
  };
}

/** Builds the backup service the way `zsb serve` does. */
async function backupServiceForCli(config: Config): Promise<{
  service: BackupService;
  stop: () => Promise<void>;
}> {
  const withBackup = backupConfig(config);
  // The broker's logger (with its redaction), on stderr: stdout carries the command's answer.
  const logger = createLogger(config.log.level, process.stderr);
  const { openbao, credential } = await connectOpenBao(config.openbao, logger);
  const audit = await openAuditLog(config.audit, process.stderr);
  const onBoundary = pauseHook();
  const service = backupServiceFor({
    config: withBackup,
    openbao,
    brokerToken: () => credential.token(),
    defaultBinary: () => findBaoBinary(),
    logger,
    onOutcome: async (outcome, trigger) => {
      const event = auditedBackup(outcome, trigger);
      if (event) await audit.log.backup(event);
    },
    ...(onBoundary ? { onBoundary } : {}),
  });
  return {
    service,
    stop: async () => {
      credential.stop();
      await audit.log.close();
    },
  };
}

export function describeBackup(outcome: BackupOutcome): string {
  switch (outcome.outcome) {
    case 'verified':
      return `verified: ${outcome.file} (${outcome.manifest.bytes} bytes, snapshot ${outcome.manifest.snapshotSeconds.toFixed(2)} s, verification ${outcome.manifest.verification?.seconds.toFixed(2)} s${outcome.shipped ? ', shipped' : ''}${outcome.deleted.length ? `, retention deleted ${outcome.deleted.length}` : ''})`;
    case 'failed':
      return `failed at ${outcome.stage}: ${outcome.reason}`;
    case 'busy':
      return 'another instance holds the backup lock';
    case 'not-due':
      return `not due (next ${outcome.nextDue})`;
  }
}

function age(from: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(from)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function registerList(backup: Command): void {
  backup
    .command('list')
    .description('snapshots in the backup directory: verified or not, age, size')
    .option('--json', 'machine-readable output')
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (_options: unknown, command: Command) => {
      // `--config` may stand before or after `list`: commander gives it to `backup` then.
      const options = command.optsWithGlobals<{ json?: boolean; config?: string }>();
      const config = backupConfig(loadConfigFile(configFile(options)));
      // The directory first, without OpenBao: in a disaster it is what is left to look at.
      const files = await listDirectory(config.backup.directory);
      let listing: Awaited<ReturnType<BackupService['list']>> = { ...files, record: undefined };
      let stop: () => Promise<void> = async () => undefined;
      try {
        const connected = await backupServiceForCli(config);
        stop = connected.stop;
        listing = await connected.service.list();
      } catch (error) {
        process.stderr.write(
          `zsb: the shared backup record was not read (${(error as Error).message})\n`,
        );
      }
      try {
        if (options.json) {
          process.stdout.write(`${JSON.stringify(listing, null, 2)}\n`);
          return;
        }
        const now = Date.now();
        for (const { path: file, manifest } of listing.snapshots) {
          const state = manifest.verification
            ? `${manifest.verification.result} ${manifest.verification.at}${manifest.verification.reason ? ` (${manifest.verification.reason})` : ''}`
            : 'not verified';
          process.stdout.write(
            `${path.basename(file)}  age ${age(manifest.takenAt, now)}  ${manifest.bytes} bytes  ${state}\n`,
          );
        }
        for (const { path: file, reason } of listing.incomplete) {
          process.stdout.write(`${path.basename(file)}  INCOMPLETE: ${reason}\n`);
        }
        if (listing.snapshots.length === 0) process.stdout.write('no snapshots\n');
        const r = listing.record;
        if (r) {
          process.stdout.write(
            `last success: ${r.lastSuccessAt ?? 'never'}; last verified: ${r.lastVerifiedAt ?? 'never'}${r.lastError ? `; last error ${r.lastError.at} at ${r.lastError.stage}: ${r.lastError.message}` : ''}\n`,
          );
        }
      } finally {
        await stop();
      }
    });
}

function registerVerify(backup: Command): void {
  backup
    .command('verify')
    .description(
      'restore FILE into a scratch OpenBao (same seal key) and read its canary back; reports only, never edits the manifest',
    )
    .argument('<file>', 'snapshot file (its manifest next to it)')
    .option('--token-file <file>', 'a token of the source cluster, valid in the snapshot')
    .option('--config <file>', 'configuration file (YAML): backup.verify')
    .action(async (file: string, _options: unknown, command: Command) => {
      const options = command.optsWithGlobals<{ tokenFile?: string; config?: string }>();
      const config = backupConfig(loadConfigFile(configFile(options)));
      const verify = config.backup.verify;
      const manifest = await readManifestOf(file);
      const tokenFile =
        options.tokenFile ??
        verify.tokenFile ??
        (config.openbao.auth.method === 'token' ? config.openbao.auth.tokenFile : undefined);
      if (tokenFile === undefined) {
        throw new Error('give --token-file: a token of the source cluster, valid in the snapshot');
      }
      const result = await verifySnapshot(
        file,
        manifest,
        readTokenFile(tokenFile, '--token-file'),
        {
          binary: verify.baoBinary ?? findBaoBinary(),
          sealKeyFile: verify.sealKeyFile,
          sealKeyId: verify.sealKeyId,
          timeoutMs: verify.timeoutSeconds * 1000,
          scratchDir: verify.scratchDir,
        },
      );
      if (result.ok) {
        process.stdout.write(`verified: ${file} (${result.seconds.toFixed(2)} s)\n`);
      } else {
        process.stdout.write(`NOT verified: ${file}: ${result.stage}: ${result.reason}\n`);
        process.exitCode = 1;
      }
    });
}

function registerRestore(backup: Command): void {
  backup
    .command('restore')
    .description(
      'restore FILE into the OpenBao cluster at --address (admin: sudo on sys/storage/raft/snapshot); replaces all its data',
    )
    .argument('<file>', 'snapshot file (its manifest next to it)')
    .requiredOption('--address <url>', 'the target cluster (its active node)')
    .requiredOption('--token-file <file>', 'a token of the TARGET cluster with sudo on the path')
    .option('--allow-unverified', 'restore a snapshot whose manifest does not say verified')
    .option('--wait-seconds <n>', 'wait this long for the target to become active again', '120')
    .action(
      async (
        file: string,
        options: {
          address: string;
          tokenFile: string;
          allowUnverified?: boolean;
          waitSeconds: string;
        },
      ) => {
        const manifest = await readManifestOf(file);
        if (!isVerified(manifest) && !options.allowUnverified) {
          throw new Error(
            `${file} is not verified (see its manifest); --allow-unverified to force`,
          );
        }
        const problem = await checkFile(file, manifest);
        if (problem !== undefined) throw new Error(problem);
        const token = readTokenFile(options.tokenFile, '--token-file');
        const started = performance.now();
        const transfer = createSnapshotTransfer({
          addresses: [options.address],
          timeoutMs: 600_000,
          maxBytes: Number.MAX_SAFE_INTEGER,
          token: () => token,
        });
        await transfer.restoreSnapshot(file, token);
        // After a restore the node reloads; the target's own tokens no longer work.
        const health = createOpenBaoClient({
          addresses: [options.address],
          timeoutMs: 2000,
          maxConnections: 1,
          maxAttempts: 1,
          token: () => '',
        });
        const deadline = Date.now() + Number(options.waitSeconds) * 1000;
        while ((await health.health()).status !== 'ok') {
          if (Date.now() > deadline) throw new Error('restored, but the target is not active yet');
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        process.stdout.write(
          `restored ${manifest.file} (taken ${manifest.takenAt}) into ${options.address} in ${((performance.now() - started) / 1000).toFixed(2)} s; tokens of the source cluster are valid there now, the target's own are not\n`,
        );
      },
    );
}

export function registerBackupCommands(program: Command): void {
  const backup = program
    .command('backup')
    .description('take a verified OpenBao snapshot now, or only when due with --due')
    .option('--due', 'only when the schedule says so (exit 0 also when not due or busy)')
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (options: { due?: boolean; config?: string }) => {
      const { service, stop } = await backupServiceForCli(loadConfigFile(configFile(options)));
      try {
        const outcome = await service.run({ force: !options.due, trigger: 'manual' });
        process.stdout.write(`${describeBackup(outcome)}\n`);
        const fine =
          outcome.outcome === 'verified' ||
          outcome.outcome === 'not-due' ||
          (options.due === true && outcome.outcome === 'busy');
        if (!fine) process.exitCode = 1;
      } finally {
        await stop();
      }
    });
  registerList(backup);
  registerVerify(backup);
  registerRestore(backup);
}
