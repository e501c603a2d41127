/**
 * The backup service as `zsb serve` and `zsb backup` build it from the configuration: the
 * broker's OpenBao client for KV (canary, lock), a streaming snapshot transfer to the same
 * addresses with the broker's token, and the verification settings.
 */
import { PrivateFileError, readPrivateFileSync } from '../config/private-file.js';
import type { Config } from '../config/schema.js';
import type { KvReader, KvWriter } from '../openbao/interface.js';
import { createSnapshotTransfer } from '../openbao/snapshot.js';
import type { BackupSchedule } from './due.js';
import { isCronExpression } from './due.js';
import { type BackupServiceOptions, createBackupService } from './service.js';

export type BackupConfig = NonNullable<Config['backup']>;

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** `backup.every`: seconds, or `90s`, `30m`, `6h`, `1d`, `1w`. */
export function everySeconds(every: number | string): number {
  if (typeof every === 'number') return every;
  const match = /^(\d+)([smhdw])$/.exec(every.trim());
  const unit = match ? UNITS[match[2] ?? ''] : undefined;
  if (!match || unit === undefined || Number(match[1]) <= 0) {
    throw new Error('backup.every: not a duration (e.g. 3600, 30m, 6h, 1d)');
  }
  return Number(match[1]) * unit;
}

export function scheduleOf(backup: BackupConfig): BackupSchedule {
  if (backup.schedule !== undefined) {
    if (!isCronExpression(backup.schedule))
      throw new Error('backup.schedule: not a cron expression');
    return { cron: backup.schedule };
  }
  return { everySeconds: everySeconds(backup.every ?? 0) };
}

/** A token file's content, trimmed; errors name the file, never its content. */
export function readTokenFile(file: string, key: string): string {
  let token: string;
  try {
    token = readPrivateFileSync(file, key).toString('utf8').trim();
  } catch (error) {
    if (error instanceof PrivateFileError) throw error;
    throw new Error(`${key}: cannot read ${file} (${(error as NodeJS.ErrnoException).code})`);
  }
  if (token === '') throw new Error(`${key}: ${file} is empty`);
  return token;
}

export interface BackupWiring {
  readonly config: Pick<Config, 'openbao'> & { readonly backup: BackupConfig };
  readonly openbao: KvReader & KvWriter;
  /** The broker's current token (its credential). */
  readonly brokerToken: () => string;
  /** The bao binary when the configuration names none. */
  readonly defaultBinary: () => string;
  readonly logger: BackupServiceOptions['logger'];
  readonly onOutcome?: BackupServiceOptions['onOutcome'];
  readonly onBoundary?: BackupServiceOptions['onBoundary'];
}

export function backupServiceFor(wiring: BackupWiring) {
  const { backup, openbao } = wiring.config;
  const transfer = createSnapshotTransfer({
    addresses: openbao.addresses ?? (openbao.address ? [openbao.address] : []),
    timeoutMs: backup.snapshotTimeoutSeconds * 1000,
    maxBytes: backup.maxSnapshotBytes,
    namespace: openbao.namespace,
    tls: openbao.tls,
    token: wiring.brokerToken,
  });
  const verify = backup.verify;
  const tokenFile = verify.tokenFile;
  return createBackupService({
    openbao: {
      kvRead: (...args) => wiring.openbao.kvRead(...args),
      kvReadWrapped: (...args) => wiring.openbao.kvReadWrapped(...args),
      wrapData: (...args) => wiring.openbao.wrapData(...args),
      kvWrite: (...args) => wiring.openbao.kvWrite(...args),
      saveSnapshot: (destination) => transfer.saveSnapshot(destination),
      restoreSnapshot: (file, token, address) => transfer.restoreSnapshot(file, token, address),
      clusterInfo: () => transfer.clusterInfo(),
    },
    directory: backup.directory,
    stateMount: openbao.stateMount,
    statePrefix: openbao.statePrefix,
    schedule: scheduleOf(backup),
    retention: backup.retention,
    lockTtlSeconds: backup.lockTtlSeconds,
    verify: {
      binary: verify.baoBinary ?? wiring.defaultBinary(),
      sealKeyFile: verify.sealKeyFile,
      sealKeyId: verify.sealKeyId,
      timeoutMs: verify.timeoutSeconds * 1000,
      scratchDir: verify.scratchDir,
    },
    // Read at each backup: an operator may replace the file without restarting the broker.
    verifyToken: () =>
      tokenFile === undefined
        ? wiring.brokerToken()
        : readTokenFile(tokenFile, 'backup.verify.tokenFile'),
    hook:
      backup.hook === undefined
        ? undefined
        : {
            command: backup.hook.command,
            timeoutMs: backup.hook.timeoutSeconds * 1000,
            ...(backup.hook.env ? { env: backup.hook.env } : {}),
          },
    logger: wiring.logger,
    ...(wiring.onOutcome ? { onOutcome: wiring.onOutcome } : {}),
    ...(wiring.onBoundary ? { onBoundary: wiring.onBoundary } : {}),
  });
}
