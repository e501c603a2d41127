/**
 * The backup's durable record in OpenBao KV v2 (`{stateMount}/{statePrefix}/backup/state`):
 * the lock (holder and expiry) and when the last backup started, succeeded and was
 * verified. The same design as rotation's (ADR 0009, src/rotation/state.ts): every write is
 * check-and-set on the version read, so the record's version is the lock's fencing token; a
 * holder that lost the lock loses its next write. The record is shared by every broker
 * instance and by `zsb backup --due`, so "due" means the same thing to all of them.
 */
import { OpenBaoError } from '../openbao/errors.js';
import type { KvReader, KvWriter } from '../openbao/interface.js';

export interface BackupRecord {
  readonly holder?: { readonly id: string; readonly until: number };
  readonly lastStartedAt?: string;
  readonly lastSuccessAt?: string;
  readonly lastVerifiedAt?: string;
  /** The snapshot file of the last success (name only). */
  readonly lastFile?: string;
  readonly lastError?: { readonly at: string; readonly stage: string; readonly message: string };
  readonly failures: number;
}

export class BackupLockLost extends Error {
  override readonly name = 'BackupLockLost';
  constructor() {
    super('another instance took over the backup lock; this one stops');
  }
}

export interface BackupLockOptions {
  readonly mount: string;
  readonly prefix: string;
  readonly instanceId: string;
  readonly ttlMs: number;
  readonly now: () => number;
}

/** Fields to change; `undefined` removes one. */
export type BackupRecordPatch = { [K in keyof BackupRecord]?: BackupRecord[K] | undefined };

export interface HeldLock {
  readonly record: BackupRecord;
  /** Writes `patch`, renewing the lock; BackupLockLost when someone else wrote first. */
  update(patch: BackupRecordPatch): Promise<void>;
  /** Writes `patch` and gives the lock up. */
  release(patch: BackupRecordPatch): Promise<void>;
}

export interface BackupState {
  read(): Promise<BackupRecord>;
  /** The lock, or `busy` while another live holder has it. */
  acquire(): Promise<HeldLock | 'busy'>;
}

export function createBackupState(openbao: KvReader & KvWriter, o: BackupLockOptions): BackupState {
  const path = `${o.prefix}/backup/state`;
  const read = async () => {
    const entry = await openbao.kvRead(o.mount, path);
    if (entry === null) return { record: { failures: 0 } as BackupRecord, version: 0 };
    return { record: entry.data as unknown as BackupRecord, version: entry.version };
  };
  const write = async (record: Record<string, unknown>, version: number): Promise<number> => {
    try {
      return (await openbao.kvWrite(o.mount, path, record, { cas: version })).version;
    } catch (error) {
      if (error instanceof OpenBaoError && error.kind === 'cas_mismatch')
        throw new BackupLockLost();
      throw error;
    }
  };
  const merged = (record: BackupRecord, patch: BackupRecordPatch, keep: boolean) => {
    const next: Record<string, unknown> = { ...record, ...patch };
    if (keep) next.holder = { id: o.instanceId, until: o.now() + o.ttlMs };
    else delete next.holder;
    for (const [k, v] of Object.entries(next)) if (v === undefined) delete next[k];
    return next;
  };
  return {
    read: async () => (await read()).record,
    async acquire() {
      let { record, version } = await read();
      const holder = record.holder;
      if (holder !== undefined && holder.id !== o.instanceId && holder.until > o.now()) {
        return 'busy';
      }
      const commit = async (patch: BackupRecordPatch, keep: boolean) => {
        const next = merged(record, patch, keep);
        version = await write(next, version);
        record = next as unknown as BackupRecord;
      };
      try {
        await commit({}, true);
      } catch (error) {
        if (error instanceof BackupLockLost) return 'busy';
        throw error;
      }
      const held: HeldLock = {
        get record() {
          return record;
        },
        update: (patch) => commit(patch, true),
        release: (patch) => commit(patch, false),
      };
      return held;
    },
  };
}
