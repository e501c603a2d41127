/**
 * A rotation's durable record in OpenBao KV v2 (`{stateMount}/{statePrefix}/rotations/<name>`):
 * the lock (holder and expiry), the run in progress (rotation id, step, base version and
 * the pending value), and the outcome of the last runs. Every write is check-and-set on
 * the version that was read, so the record's version is also the lock's fencing token: a
 * holder that lost the lock loses its next write and stops.
 */
import { OpenBaoError } from '../openbao/errors.js';
import type { KvReader, KvWriter } from '../openbao/interface.js';

export type RotationStep = 'created' | 'set' | 'tested' | 'promoted';

export interface RotationRun {
  /** Random id of this rotation, kept until it finishes or aborts. */
  readonly id: string;
  /** The last step that completed. */
  readonly step: RotationStep;
  readonly startedAt: string;
  /** What the rotation started from: the KV version, or a driver's own marker. */
  readonly base: number | string;
  /** The value being rotated in; a secret, so the record lives in OpenBao only. */
  readonly pending: Readonly<Record<string, unknown>>;
}

export interface RotationRecord {
  readonly holder?: { readonly id: string; readonly until: number };
  readonly run?: RotationRun;
  readonly lastSuccess?: string;
  readonly lastVersion?: number | string;
  readonly lastOutcome?: 'rotated' | 'aborted' | 'failed';
  readonly lastError?: { readonly at: string; readonly step: string; readonly message: string };
  /** Consecutive failed runs: spaces out retries. */
  readonly failures: number;
}

export interface StoredRecord {
  readonly record: RotationRecord;
  /** KV version of the record (0 = none yet): the check-and-set value of the next write. */
  readonly version: number;
}

export class LockLostError extends Error {
  override readonly name = 'LockLostError';
  constructor() {
    super('another instance took over the rotation lock; this one stops');
  }
}

export interface RotationStateStore {
  read(name: string): Promise<StoredRecord>;
  /** Writes with check-and-set; throws LockLostError when someone else wrote first. */
  write(name: string, record: RotationRecord, version: number): Promise<StoredRecord>;
}

/** Rotation names may hold `:` and `/` (static roles); the KV key uses neither. */
export function stateKey(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

export function createRotationStateStore(
  openbao: KvReader & KvWriter,
  options: { readonly mount: string; readonly prefix: string },
): RotationStateStore {
  const pathOf = (name: string) => `${options.prefix}/rotations/${stateKey(name)}`;
  return {
    async read(name) {
      const entry = await openbao.kvRead(options.mount, pathOf(name));
      if (entry === null) return { record: { failures: 0 }, version: 0 };
      return { record: entry.data as unknown as RotationRecord, version: entry.version };
    },
    async write(name, record, version) {
      try {
        const written = await openbao.kvWrite(
          options.mount,
          pathOf(name),
          record as unknown as Record<string, unknown>,
          { cas: version },
        );
        return { record, version: written.version };
      } catch (error) {
        if (error instanceof OpenBaoError && error.kind === 'cas_mismatch') {
          throw new LockLostError();
        }
        throw error;
      }
    },
  };
}
