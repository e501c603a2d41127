/** Types the files of src/backup/ share: stages, boundaries, outcomes, the logger. */
import type { BackupRecord } from './lock.js';
import type { Manifest } from './manifest.js';

export const BACKUP_STAGES = [
  'lock',
  'canary',
  'snapshot',
  'write',
  'verify',
  'ship',
  'retention',
] as const;
export type BackupStage = (typeof BACKUP_STAGES)[number];

/** Points where a test may stop the process (ZSB_BACKUP_PAUSE_AT): a crash mid-write. */
export const BACKUP_BOUNDARIES = ['snapshot-streamed', 'snapshot-renamed'] as const;
export type BackupBoundary = (typeof BACKUP_BOUNDARIES)[number];

export type BackupOutcome =
  | {
      readonly outcome: 'verified';
      readonly file: string;
      readonly manifest: Manifest;
      readonly shipped: boolean;
      readonly deleted: readonly string[];
      readonly record: BackupRecord;
    }
  | {
      readonly outcome: 'failed';
      readonly stage: BackupStage;
      readonly reason: string;
      readonly file?: string;
      readonly manifest?: Manifest;
      readonly record?: BackupRecord;
    }
  | { readonly outcome: 'busy'; readonly record?: BackupRecord }
  | { readonly outcome: 'not-due'; readonly nextDue: string; readonly record: BackupRecord };

export interface BackupLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
