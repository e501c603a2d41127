/**
 * Backups inside `zsb serve`: the scheduler runs a due backup every `checkIntervalSeconds`
 * (the lock in OpenBao lets one instance of many take it), reports into the broker's
 * metrics and audit log, and never touches serving: a backup that fails is logged,
 * counted and audited, and requests go on.
 */
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { KvReader, KvWriter } from '../openbao/interface.js';
import { createBackupMetrics } from './metrics.js';
import { backupServiceFor } from './settings.js';
import type { BackupLogger, BackupOutcome } from './types.js';

/** The audit event of a run (runs that did nothing are not audited). */
export function auditedBackup(outcome: BackupOutcome, trigger: 'schedule' | 'manual') {
  if (outcome.outcome === 'verified') {
    return {
      outcome: 'verified' as const,
      trigger,
      file: outcome.manifest.file,
      sha256: outcome.manifest.sha256,
      bytes: outcome.manifest.bytes,
    };
  }
  if (outcome.outcome !== 'failed') return undefined;
  return {
    outcome: 'failed' as const,
    trigger,
    stage: outcome.stage,
    reason: outcome.reason,
    ...(outcome.manifest
      ? {
          file: outcome.manifest.file,
          sha256: outcome.manifest.sha256,
          bytes: outcome.manifest.bytes,
        }
      : {}),
  };
}

export interface BackupSchedulerDeps {
  readonly openbao: KvReader & KvWriter;
  readonly brokerToken: () => string;
  readonly registry: Registry;
  readonly audit: { backup(event: NonNullable<ReturnType<typeof auditedBackup>>): Promise<void> };
  readonly logger: BackupLogger;
  readonly defaultBinary: () => string;
}

/** Starts the scheduler when `backup.enabled`; the returned function stops it (and waits). */
export function startBackupScheduler(
  config: Pick<Config, 'openbao' | 'backup'>,
  deps: BackupSchedulerDeps,
): () => Promise<void> {
  const backup = config.backup;
  if (backup === undefined || !backup.enabled) return async () => undefined;
  const observe = createBackupMetrics(deps.registry);
  const service = backupServiceFor({
    config: { openbao: config.openbao, backup },
    openbao: deps.openbao,
    brokerToken: deps.brokerToken,
    defaultBinary: deps.defaultBinary,
    logger: deps.logger,
    onOutcome: async (outcome, trigger) => {
      observe(outcome);
      const event = auditedBackup(outcome, trigger);
      if (event === undefined) return;
      await deps.audit.backup(event).catch((error: unknown) => {
        deps.logger.error(
          { error: (error as Error).message },
          'audit event of a backup not written',
        );
      });
    },
  });
  return service.schedule(backup.checkIntervalSeconds);
}
