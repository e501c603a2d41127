/**
 * A rotation's durable record in OpenBao KV v2 (`{stateMount}/{statePrefix}/rotations/<name>`):
 * the lock (holder and expiry), the run in progress (rotation id, step, base version and
 * the pending value), and the outcome of the last runs. Every write is check-and-set on
 * the version that was read, so the record's version is also the lock's fencing token: a
 * holder that lost the lock loses its next write and stops.
 */
import { isOutcomeUnknown, OpenBaoError } from '../openbao/errors.js';
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
  /** When the pending value became current (set with step `promoted`). */
  readonly promotedAt?: string;
  /** A promoted run whose clean-up waits for the driver's grace period: not before this. */
  readonly finishAfter?: string;
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

/** JSON with sorted keys: the record as written and as read back compare equal. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : v,
  );
}

/** Read-backs (and re-sends of a write that did not land) after an unknown outcome. */
const LANDING_READS = 3;

/** Rotation names may hold `:` and `/` (static roles); the KV key uses neither. */
export function stateKey(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

export function createRotationStateStore(
  openbao: KvReader & KvWriter,
  options: { readonly mount: string; readonly prefix: string },
): RotationStateStore {
  const pathOf = (name: string) => `${options.prefix}/rotations/${stateKey(name)}`;
  // Reads are fresh (the client reads from the active node, ADR 0012): a stale record
  // made a holder's own next write fail its check-and-set ("lock lost") and left the
  // lock held until it expired.
  const read = async (name: string): Promise<StoredRecord> => {
    const entry = await openbao.kvRead(options.mount, pathOf(name));
    if (entry === null) return { record: { failures: 0 }, version: 0 };
    return { record: entry.data as unknown as RotationRecord, version: entry.version };
  };
  const send = async (name: string, record: RotationRecord, version: number) => {
    const written = await openbao.kvWrite(
      options.mount,
      pathOf(name),
      record as unknown as Record<string, unknown>,
      { cas: version },
    );
    return { record, version: written.version };
  };

  /**
   * A write whose answer was lost: read back from the active node. Our record there (it
   * holds our holder id, lock expiry and run id) means it landed; the version we named
   * still current means it did not, and the same check-and-set is sent again; anything
   * else is someone else's write.
   */
  const reconcile = async (name: string, record: RotationRecord, version: number) => {
    for (let attempt = 0; attempt < LANDING_READS; attempt++) {
      // The client already retries a read across an election; if it still fails, the run
      // fails as transient and the next attempt (this holder's) resumes from the record.
      const current = await read(name);
      if (current.version === version + 1 && canonical(current.record) === canonical(record)) {
        return { record, version: current.version };
      }
      if (current.version !== version) throw new LockLostError();
      try {
        return await send(name, record, version);
      } catch (error) {
        if (error instanceof OpenBaoError && error.kind === 'cas_mismatch') continue;
        if (!isOutcomeUnknown(error)) throw error;
      }
    }
    throw new OpenBaoError('rotation state write', 'unavailable', 0);
  };

  return {
    read,
    async write(name, record, version) {
      try {
        return await send(name, record, version);
      } catch (error) {
        if (error instanceof OpenBaoError && error.kind === 'cas_mismatch') {
          throw new LockLostError();
        }
        if (isOutcomeUnknown(error)) return reconcile(name, record, version);
        throw error;
      }
    },
  };
}
