/**
 * Prometheus metrics of backups, on the broker's registry. The timestamps come from the
 * shared record in OpenBao (every instance reports the same last success, whichever took
 * it), so `max()` over instances is the cluster's answer and a restarted instance does not
 * report 0. Labels: `stage`, a closed set (BACKUP_STAGES).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { BACKUP_STAGES, type BackupOutcome } from './types.js';

export function createBackupMetrics(registry: Registry): (outcome: BackupOutcome) => void {
  const lastSuccess = new Gauge({
    name: 'zsb_backup_last_success_timestamp_seconds',
    help: 'When the last backup run succeeded (snapshot taken, verified, shipped, retention applied)',
    registers: [registry],
  });
  const lastVerified = new Gauge({
    name: 'zsb_backup_last_verified_timestamp_seconds',
    help: 'When the newest snapshot was last proven good by a restore',
    registers: [registry],
  });
  const failures = new Counter({
    name: 'zsb_backup_failures_total',
    help: 'Backup runs of this instance that failed, by stage (lock, canary, snapshot, write, verify, ship, retention)',
    labelNames: ['stage'],
    registers: [registry],
  });
  const bytes = new Gauge({
    name: 'zsb_backup_snapshot_bytes',
    help: 'Size of the last snapshot this instance took',
    registers: [registry],
  });
  const seconds = new Gauge({
    name: 'zsb_backup_duration_seconds',
    help: 'Duration of the last snapshot download and of its verification by restore',
    labelNames: ['phase'],
    registers: [registry],
  });
  for (const stage of BACKUP_STAGES) failures.inc({ stage }, 0);
  const fromRecord = (record: { lastSuccessAt?: string; lastVerifiedAt?: string } | undefined) => {
    if (record?.lastSuccessAt) lastSuccess.set(Date.parse(record.lastSuccessAt) / 1000);
    if (record?.lastVerifiedAt) lastVerified.set(Date.parse(record.lastVerifiedAt) / 1000);
  };
  return (outcome) => {
    fromRecord(outcome.record);
    if (outcome.outcome === 'failed') failures.inc({ stage: outcome.stage });
    const manifest =
      outcome.outcome === 'busy' || outcome.outcome === 'not-due' ? undefined : outcome.manifest;
    if (manifest !== undefined) {
      bytes.set(manifest.bytes);
      seconds.set({ phase: 'snapshot' }, manifest.snapshotSeconds);
      if (manifest.verification) seconds.set({ phase: 'verify' }, manifest.verification.seconds);
    }
  };
}
