/**
 * The per-build ledger: every token and certificate the broker issues for a build is
 * recorded against its `build-uuid`, in OpenBao KV v2 (check-and-set), so that any broker
 * instance, also one started after a crash, can revoke the whole build. Secret values
 * and tokens are never stored: only accessors and certificate serials.
 *
 * Dynamic secrets are issued under a per-build token that is recorded here *before* it
 * issues anything; revoking it revokes every lease and child token created with it. A build
 * is (issuer, build-uuid): its ledger lives at `builds/by-issuer/<sha256(iss)[:32]>/<uuid>`.
 * OpenBao's TTLs remain the backstop when nobody ever calls revoke.
 */
import { createHash } from 'node:crypto';
import { isOutcomeUnknown, OpenBaoError } from '../openbao/errors.js';
import type { KvReader, KvWriter, TokenAdmin } from '../openbao/interface.js';

export type LedgerEntry =
  | { readonly kind: 'build-token'; readonly accessor: string; readonly expiresAt: string }
  | {
      readonly kind: 'certificate';
      readonly mount: string;
      readonly serial: string;
      readonly expiresAt: string;
    };

/**
 * A build's identity. A `build-uuid` is unique only within one Zuul, and Zuul shows build
 * uuids publicly, so every ledger, cache and revocation is keyed by both.
 */
export interface BuildRef {
  /** The token's exact `iss` (a configured issuer). */
  readonly issuer: string;
  readonly build: string;
}

interface StoredLedger {
  readonly issuer?: string;
  readonly build?: string;
  /**
   * Bumped by every revoke before it revokes anything. Issuing checks that it did not
   * change from the start of its request to the end, so a credential whose lease OpenBao
   * registered after the build token's revocation scanned it is taken back, not left alive.
   */
  readonly epoch?: number;
  readonly entries: readonly (LedgerEntry & { readonly revoked?: boolean })[];
}

export interface LedgerOptions {
  readonly mount: string;
  readonly prefix: string;
  /** Entries one build may hold; beyond it issuing fails closed. */
  readonly maxEntriesPerBuild?: number;
  /**
   * Ledgers written before builds were keyed by issuer live at `builds/<build-uuid>` and
   * name no issuer. They are revoked along with the build only when the broker trusts a
   * single issuer, where no other Zuul can own that uuid (see docs/dynamic-secrets.md).
   */
  readonly revokeUnscopedLedgers?: boolean;
}

export interface RevokeOutcome {
  readonly revoked: number;
  /** Entries that could not be revoked now (left in the ledger for the next call). */
  readonly failed: number;
}

export interface LeaseLedger {
  /** The build's revocation epoch now (0 for a build never revoked). */
  epoch(build: BuildRef): Promise<number>;
  /**
   * Appends entries; with `epoch`, only while the build's epoch is still that one,
   * else {@link BuildRevokedError} and nothing is written.
   */
  append(
    build: BuildRef,
    entries: readonly LedgerEntry[],
    options?: { readonly epoch?: number },
  ): Promise<void>;
  /** Throws {@link BuildRevokedError} when the build was revoked since `epoch` was read. */
  confirm(build: BuildRef, epoch: number): Promise<void>;
  revokeBuild(build: BuildRef): Promise<RevokeOutcome>;
}

export interface Revoker extends TokenAdmin {
  pkiRevoke(mount: string, serialNumber: string): Promise<void>;
}

export class LedgerFullError extends Error {
  override readonly name = 'LedgerFullError';
}

/** The build was revoked while a request was issuing for it: what it issued is taken back. */
export class BuildRevokedError extends Error {
  override readonly name = 'BuildRevokedError';
  constructor() {
    super('the build was revoked while this request was issuing its secrets');
  }
}

const CAS_ATTEMPTS = 12;
/** Read-backs after an unknown outcome: 100 ms doubling, about 3 s in all (an election). */
const LANDING_READS = 5;

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

/** A path segment for an issuer URL: stable, fixed length, safe in any KV path. */
export function issuerSegment(issuer: string): string {
  return createHash('sha256').update(issuer).digest('hex').slice(0, 32);
}

const keyOf = (e: LedgerEntry) =>
  e.kind === 'build-token' ? `t:${e.accessor}` : `c:${e.mount}:${e.serial}`;

export function createLeaseLedger(
  openbao: KvReader & KvWriter & Revoker,
  options: LedgerOptions,
): LeaseLedger {
  const max = options.maxEntriesPerBuild ?? 1000;
  const pathOf = (ref: BuildRef) =>
    `${options.prefix}/builds/by-issuer/${issuerSegment(ref.issuer)}/${ref.build}`;
  const unscopedPathOf = (ref: BuildRef) => `${options.prefix}/builds/${ref.build}`;

  async function read(path: string): Promise<{ ledger: StoredLedger; version: number }> {
    const current = await openbao.kvRead(options.mount, path);
    const ledger = current && isStored(current.data) ? current.data : { entries: [] };
    return { ledger, version: current?.version ?? 0 };
  }

  /**
   * Read-modify-write with check-and-set: concurrent writers never lose an entry. Reads are
   * fresh (the client reads from the active node, ADR 0012): a stale read would only cost
   * retries here, but it made the epoch and revoke wrong (ADR 0011).
   *
   * A write whose answer was lost (connection cut, a leader that died, a timeout) may have
   * landed. `landed` decides from a fresh read whether it did, by what the write was for
   * (an accessor appended); if it did not, the check-and-set retry is safe, since the
   * version it names is still the one read, or it fails and reads again.
   */
  async function update(
    path: string,
    change: (ledger: StoredLedger) => StoredLedger,
    landed?: (ledger: StoredLedger) => boolean,
  ): Promise<StoredLedger> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const { ledger, version } = await read(path);
      const next = change(ledger);
      try {
        await openbao.kvWrite(options.mount, path, { ...next }, { cas: version });
        return next;
      } catch (error) {
        if (landed !== undefined && isOutcomeUnknown(error)) {
          const after = await readLanding(path);
          if (landed(after)) return after;
          continue;
        }
        if (!(error instanceof OpenBaoError && error.kind === 'cas_mismatch')) throw error;
        // Many requests of one build write at once: spread the retries (full jitter).
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * 2 ** attempt));
      }
    }
    throw new OpenBaoError('ledger update', 'unavailable', 0);
  }

  /** A fresh read after an unknown outcome, retried while OpenBao elects a leader. */
  async function readLanding(path: string): Promise<StoredLedger> {
    for (let attempt = 0; attempt < LANDING_READS; attempt++) {
      try {
        return (await read(path)).ledger;
      } catch (error) {
        if (!isOutcomeUnknown(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
      }
    }
    throw new OpenBaoError('ledger read-back', 'unavailable', 0);
  }

  /** Revokes the entries not yet revoked, then marks those that are gone. */
  async function revokeEntries(path: string, entries: StoredLedger['entries']) {
    const done = new Set<string>();
    let failed = 0;
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
      await update(path, (latest) => ({
        ...latest,
        entries: latest.entries.map((e) => (done.has(keyOf(e)) ? { ...e, revoked: true } : e)),
      }));
    }
    return { revoked: done.size, failed };
  }

  return {
    async epoch(ref) {
      return (await read(pathOf(ref))).ledger.epoch ?? 0;
    },

    async append(ref, added, appendOptions) {
      const keys = new Set(added.map(keyOf));
      await update(
        pathOf(ref),
        (ledger) => {
          if (appendOptions?.epoch !== undefined && (ledger.epoch ?? 0) !== appendOptions.epoch)
            throw new BuildRevokedError();
          if (ledger.entries.length + added.length > max)
            throw new LedgerFullError(`build ledger holds ${max} entries at most`);
          return {
            ...ledger,
            issuer: ref.issuer,
            build: ref.build,
            entries: [...ledger.entries, ...added],
          };
        },
        // Landed when every appended accessor or serial is there (entries are only ever
        // appended or marked revoked, so a later write cannot have removed them).
        (ledger) => {
          const present = new Set(ledger.entries.map(keyOf));
          return [...keys].every((k) => present.has(k));
        },
      );
    },

    async confirm(ref, epoch) {
      if (((await read(pathOf(ref))).ledger.epoch ?? 0) !== epoch) throw new BuildRevokedError();
    },

    async revokeBuild(ref) {
      // The epoch moves first: from here on no request that started before it can keep
      // what it issues (it checks the epoch after issuing), and the entries written so far
      // are exactly the ones revoked below.
      const path = pathOf(ref);
      // Also for a ledger with no entries yet: a request may be creating its first build
      // token right now, and must not record it under the old epoch.
      const closed = await update(path, (ledger) => ({
        ...ledger,
        issuer: ref.issuer,
        build: ref.build,
        epoch: (ledger.epoch ?? 0) + 1,
      }));
      const outcome = await revokeEntries(path, closed.entries);
      if (!options.revokeUnscopedLedgers) return outcome;
      const unscoped = unscopedPathOf(ref);
      const legacy = await revokeEntries(unscoped, (await read(unscoped)).ledger.entries);
      return {
        revoked: outcome.revoked + legacy.revoked,
        failed: outcome.failed + legacy.failed,
      };
    },
  };
}
