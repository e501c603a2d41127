/**
 * The per-build ledger: every token and certificate the broker issues for a build is
 * recorded against its `build-uuid`, in OpenBao KV v2 (check-and-set), so that any broker
 * instance, also one started after a crash, can revoke the whole build. Secret values
 * and tokens are never stored: only accessors and certificate serials.
 *
 * Dynamic secrets are issued under a per-build token that is recorded here *before* it
 * issues anything; revoking it revokes every lease and child token created with it.
 * OpenBao's TTLs remain the backstop when nobody ever calls revoke.
 */
import { OpenBaoError } from '../openbao/errors.js';
import type { KvReader, KvWriter, TokenAdmin } from '../openbao/interface.js';

export type LedgerEntry =
  | { readonly kind: 'build-token'; readonly accessor: string; readonly expiresAt: string }
  | {
      readonly kind: 'certificate';
      readonly mount: string;
      readonly serial: string;
      readonly expiresAt: string;
    };

interface StoredLedger {
  readonly entries: readonly (LedgerEntry & { readonly revoked?: boolean })[];
}

export interface LedgerOptions {
  readonly mount: string;
  readonly prefix: string;
  /** Entries one build may hold; beyond it issuing fails closed. */
  readonly maxEntriesPerBuild?: number;
}

export interface RevokeOutcome {
  readonly revoked: number;
  /** Entries that could not be revoked now (left in the ledger for the next call). */
  readonly failed: number;
}

export interface LeaseLedger {
  append(build: string, entries: readonly LedgerEntry[]): Promise<void>;
  revokeBuild(build: string): Promise<RevokeOutcome>;
}

export interface Revoker extends TokenAdmin {
  pkiRevoke(mount: string, serialNumber: string): Promise<void>;
}

export class LedgerFullError extends Error {
  override readonly name = 'LedgerFullError';
}

const CAS_ATTEMPTS = 8;

function isStored(value: unknown): value is StoredLedger {
  return (
    typeof value === 'object' && value !== null && Array.isArray((value as StoredLedger).entries)
  );
}

/** Already gone at OpenBao (expired, revoked, unknown): nothing left to revoke. */
function isGone(error: unknown): boolean {
  return (
    error instanceof OpenBaoError &&
    (error.kind === 'invalid_request' || error.kind === 'not_found')
  );
}

export function createLeaseLedger(
  openbao: KvReader & KvWriter & Revoker,
  options: LedgerOptions,
): LeaseLedger {
  const max = options.maxEntriesPerBuild ?? 1000;
  const pathOf = (build: string) => `${options.prefix}/builds/${build}`;

  /** Read-modify-write with check-and-set: concurrent writers never lose an entry. */
  async function update(
    build: string,
    change: (entries: StoredLedger['entries']) => StoredLedger['entries'] | undefined,
  ): Promise<void> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await openbao.kvRead(options.mount, pathOf(build));
      const entries = current && isStored(current.data) ? current.data.entries : [];
      const next = change(entries);
      if (next === undefined) return;
      try {
        await openbao.kvWrite(
          options.mount,
          pathOf(build),
          { entries: next },
          { cas: current?.version ?? 0 },
        );
        return;
      } catch (error) {
        if (!(error instanceof OpenBaoError && error.kind === 'cas_mismatch')) throw error;
      }
    }
    throw new OpenBaoError('ledger update', 'unavailable', 0);
  }

  return {
    async append(build, added) {
      await update(build, (entries) => {
        if (entries.length + added.length > max)
          throw new LedgerFullError(`build ledger holds ${max} entries at most`);
        return [...entries, ...added];
      });
    },

    async revokeBuild(build) {
      const current = await openbao.kvRead(options.mount, pathOf(build));
      const entries = current && isStored(current.data) ? current.data.entries : [];
      const done = new Set<string>();
      let failed = 0;
      const keyOf = (e: LedgerEntry) =>
        e.kind === 'build-token' ? `t:${e.accessor}` : `c:${e.mount}:${e.serial}`;
      await Promise.all(
        entries
          .filter((e) => !e.revoked)
          .map(async (entry) => {
            try {
              if (entry.kind === 'build-token') await openbao.revokeAccessor(entry.accessor);
              else await openbao.pkiRevoke(entry.mount, entry.serial);
              done.add(keyOf(entry));
            } catch (error) {
              if (isGone(error)) done.add(keyOf(entry));
              else failed++;
            }
          }),
      );
      if (done.size > 0) {
        await update(build, (latest) =>
          latest.map((e) => (done.has(keyOf(e)) ? { ...e, revoked: true } : e)),
        );
      }
      return { revoked: done.size, failed };
    },
  };
}
