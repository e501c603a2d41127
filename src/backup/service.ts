/**
 * Backups of OpenBao (issue #14): this folder owns snapshots, their manifests, retention,
 * verification by restore and the schedule. One run: take the lock, write a fresh canary,
 * stream a raft snapshot into the backup directory (atomically), write its manifest,
 * restore it into a scratch node and read the canary back, mark it verified, ship it (the
 * hook), apply retention, release the lock with the outcome. Any failure leaves the older
 * snapshots as they were and is reported with its stage; nothing here logs a value or a
 * token. OpenBao is reached only through the `openbao` interface.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { OpenBaoError } from '../openbao/errors.js';
import type { KvReader, KvWriter, RaftSnapshots } from '../openbao/interface.js';
import { writeCanary } from './canary.js';
import {
  BackupDirectoryError,
  createPending,
  deleteSnapshot,
  type ListedSnapshot,
  listDirectory,
  removeStaleTemporaries,
  writeManifest,
} from './directory.js';
import { type BackupSchedule, nextBackupDue } from './due.js';
import { runShipHook, type ShipHook } from './hook.js';
import { BackupLockLost, type BackupRecord, createBackupState, type HeldLock } from './lock.js';
import {
  MANIFEST_FORMAT,
  type Manifest,
  manifestNameOf,
  snapshotFileName,
  type Verification,
} from './manifest.js';
import { applyRetention, type RetentionPolicy } from './retention.js';
import type { BackupBoundary, BackupLogger, BackupOutcome, BackupStage } from './types.js';
import { type VerifySettings, verifySnapshot } from './verify.js';

export interface BackupServiceOptions {
  readonly openbao: KvReader & KvWriter & RaftSnapshots;
  readonly directory: string;
  readonly stateMount: string;
  readonly statePrefix: string;
  readonly schedule: BackupSchedule;
  readonly retention: RetentionPolicy;
  readonly lockTtlSeconds: number;
  readonly verify: VerifySettings;
  /**
   * The token the restored copy is read with: a token of the source cluster, valid when the
   * restore runs (ADR 0013). Asked for at snapshot time.
   */
  readonly verifyToken: () => string;
  readonly hook?: ShipHook | undefined;
  readonly logger: BackupLogger;
  readonly instanceId?: string;
  readonly now?: () => number;
  /** Every outcome (metrics, audit). */
  readonly onOutcome?: (outcome: BackupOutcome, trigger: 'schedule' | 'manual') => unknown;
  readonly onBoundary?: (boundary: BackupBoundary) => Promise<void> | void;
  /** The verification by restore; replaceable only so unit tests need no OpenBao binary. */
  readonly verifier?: typeof verifySnapshot;
}

export interface BackupService {
  /** One backup; with `force`, also when not due (`zsb backup`). */
  run(options?: {
    readonly force?: boolean;
    readonly trigger?: 'schedule' | 'manual';
    readonly signal?: AbortSignal;
  }): Promise<BackupOutcome>;
  list(): Promise<{
    readonly snapshots: readonly ListedSnapshot[];
    readonly incomplete: readonly { readonly path: string; readonly reason: string }[];
    readonly record: BackupRecord | undefined;
  }>;
  /** Starts the in-process scheduler; the returned function stops it (and waits). */
  schedule(checkIntervalSeconds: number): () => Promise<void>;
}

class StageFailure extends Error {
  constructor(
    readonly stage: BackupStage,
    message: string,
  ) {
    super(message);
  }
}

/** What may be reported of an error: our own words, an errno code, never upstream text. */
function describe(error: unknown): string {
  if (error instanceof OpenBaoError || error instanceof BackupDirectoryError) return error.message;
  if (error instanceof StageFailure || error instanceof BackupLockLost) return error.message;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? `error ${code}` : 'unexpected error';
}

export function createBackupService(options: BackupServiceOptions): BackupService {
  const now = options.now ?? Date.now;
  const instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${now().toString(36)}`;
  const state = createBackupState(options.openbao, {
    mount: options.stateMount,
    prefix: options.statePrefix,
    instanceId,
    ttlMs: options.lockTtlSeconds * 1000,
    now,
  });
  const log = options.logger;
  const dir = options.directory;

  const stage = async <T>(name: BackupStage, action: () => Promise<T>): Promise<T> => {
    try {
      return await action();
    } catch (error) {
      if (error instanceof StageFailure || error instanceof BackupLockLost) throw error;
      throw new StageFailure(name, describe(error));
    }
  };

  /** Streams the snapshot to a temporary file and renames it into place. */
  async function takeSnapshot(file: string): Promise<{ bytes: number; sha256: string }> {
    const pending = await stage('write', () => createPending(dir, file));
    try {
      let result: { bytes: number; sha256: string };
      try {
        result = await options.openbao.saveSnapshot(pending.stream);
      } catch (error) {
        throw new StageFailure(
          error instanceof OpenBaoError ? 'snapshot' : 'write',
          describe(error),
        );
      }
      await options.onBoundary?.('snapshot-streamed');
      await stage('write', () => pending.commit());
      return result;
    } finally {
      await pending.abort();
    }
  }

  async function snapshotAndVerify(
    held: HeldLock,
    signal: AbortSignal | undefined,
  ): Promise<{
    manifest: Manifest;
    verification: Verification;
  }> {
    const id = `${now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const cluster = await stage('snapshot', () => options.openbao.clusterInfo());
    const canary = await stage('canary', () =>
      writeCanary(options.openbao, options.stateMount, options.statePrefix, id, new Date(now())),
    );
    let verifyToken: string;
    try {
      verifyToken = options.verifyToken();
    } catch (error) {
      // Our own callback (a token file): its message names the file, never the token.
      throw new StageFailure('verify', error instanceof Error ? error.message : 'no token');
    }
    const takenAt = new Date(now());
    const file = snapshotFileName(takenAt, id);
    const started = performance.now();
    const { bytes, sha256 } = await takeSnapshot(file);
    await options.onBoundary?.('snapshot-renamed');
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      id,
      file,
      takenAt: takenAt.toISOString(),
      cluster: { id: cluster.clusterId, name: cluster.clusterName },
      openbaoVersion: cluster.version,
      bytes,
      sha256,
      canary,
      snapshotSeconds: (performance.now() - started) / 1000,
    };
    await stage('write', () => writeManifest(dir, manifest));
    // The lock stays ours through the verification, which takes seconds.
    await held.update({});
    const result = await (options.verifier ?? verifySnapshot)(
      path.join(dir, file),
      manifest,
      verifyToken,
      options.verify,
      signal ? { signal } : {},
    );
    const verification: Verification = {
      result: result.ok ? 'verified' : 'failed',
      at: new Date(now()).toISOString(),
      seconds: result.seconds,
      openbaoVersion: result.openbaoVersion,
      ...(result.ok ? {} : { reason: result.reason }),
    };
    const marked: Manifest = { ...manifest, verification };
    await stage('write', () => writeManifest(dir, marked));
    if (!result.ok) {
      const failure = new StageFailure('verify', `${file}: not verified: ${result.reason}`);
      throw Object.assign(failure, { manifest: marked });
    }
    return { manifest: marked, verification };
  }

  async function applyPolicy(): Promise<string[]> {
    const listing = await listDirectory(dir);
    const { drop } = applyRetention(listing.snapshots, options.retention);
    const deleted: string[] = [];
    for (const snapshot of drop) {
      await deleteSnapshot(snapshot.path);
      deleted.push(path.basename(snapshot.path));
    }
    return deleted;
  }

  async function runLocked(held: HeldLock, signal?: AbortSignal): Promise<BackupOutcome> {
    const startedAt = new Date(now()).toISOString();
    await held.update({ lastStartedAt: startedAt });
    await removeStaleTemporaries(dir, now()).catch(() => 0);
    let manifest: Manifest | undefined;
    try {
      ({ manifest } = await snapshotAndVerify(held, signal));
      const verifiedAt = manifest.verification?.at ?? startedAt;
      const snapshotPath = path.join(dir, manifest.file);
      const shipped = await ship(held, manifest, verifiedAt);
      const deleted = await stage('retention', applyPolicy);
      await held.release({
        lastSuccessAt: startedAt,
        lastVerifiedAt: verifiedAt,
        lastFile: manifest.file,
        lastError: undefined,
        failures: 0,
      });
      log.info(
        {
          file: manifest.file,
          bytes: manifest.bytes,
          snapshotSeconds: manifest.snapshotSeconds,
          verifySeconds: manifest.verification?.seconds,
          shipped,
          deleted,
        },
        'backup taken and verified',
      );
      return {
        outcome: 'verified',
        file: snapshotPath,
        manifest,
        shipped,
        deleted,
        record: held.record,
      };
    } catch (error) {
      if (error instanceof BackupLockLost) throw error;
      return failedRun(held, error, manifest);
    }
  }

  /** Runs the hook, if any; a failure fails the run, but the snapshot stays verified. */
  async function ship(held: HeldLock, manifest: Manifest, verifiedAt: string): Promise<boolean> {
    const hook = options.hook;
    if (hook === undefined) return false;
    const snapshot = path.join(dir, manifest.file);
    // Shipping may take minutes: the lock is renewed for it.
    await held.update({});
    await stage('ship', () =>
      runShipHook(hook, { snapshot, manifest: manifestNameOf(snapshot), dir }),
    ).catch(async (error: unknown) => {
      await held.update({ lastVerifiedAt: verifiedAt, lastFile: manifest.file });
      throw error;
    });
    return true;
  }

  /** Records the failure in the shared record (releasing the lock) and reports it. */
  async function failedRun(
    held: HeldLock,
    error: unknown,
    known: Manifest | undefined,
  ): Promise<BackupOutcome> {
    const failure =
      error instanceof StageFailure ? error : new StageFailure('snapshot', describe(error));
    const manifest = (error as { manifest?: Manifest }).manifest ?? known;
    const at = new Date(now()).toISOString();
    await held
      .release({
        lastError: { at, stage: failure.stage, message: failure.message },
        failures: (held.record.failures ?? 0) + 1,
      })
      .catch((releaseError: unknown) =>
        log.error({ error: describe(releaseError) }, 'backup outcome not recorded'),
      );
    log.error({ stage: failure.stage, error: failure.message }, 'backup failed');
    return {
      outcome: 'failed',
      stage: failure.stage,
      reason: failure.message,
      ...(manifest ? { manifest, file: path.join(dir, manifest.file) } : {}),
      record: held.record,
    };
  }

  async function run(
    runOptions: { force?: boolean; signal?: AbortSignal } = {},
  ): Promise<BackupOutcome> {
    let held: HeldLock | 'busy';
    try {
      const record = await state.read();
      if (!runOptions.force) {
        const due = nextBackupDue(options.schedule, record);
        if (due.getTime() > now()) {
          return { outcome: 'not-due', nextDue: due.toISOString(), record };
        }
      }
      held = await state.acquire();
    } catch (error) {
      log.error({ stage: 'lock', error: describe(error) }, 'backup could not start');
      return { outcome: 'failed', stage: 'lock', reason: describe(error) };
    }
    if (held === 'busy') return { outcome: 'busy' };
    try {
      return await runLocked(held, runOptions.signal);
    } catch (error) {
      log.warn({ error: describe(error) }, 'backup lock lost to another instance; stopping');
      return { outcome: 'failed', stage: 'lock', reason: describe(error) };
    }
  }

  const service: BackupService = {
    async run(runOptions = {}) {
      const outcome = await run(runOptions);
      await options.onOutcome?.(outcome, runOptions.trigger ?? 'manual');
      return outcome;
    },

    async list() {
      const listing = await listDirectory(dir);
      const record = await state.read().catch(() => undefined);
      return { ...listing, record };
    },

    schedule(checkIntervalSeconds) {
      let running: Promise<unknown> | undefined;
      let stopped = false;
      // On shutdown a verification in flight ends at once instead of at its timeout.
      const controller = new AbortController();
      // One run at a time: a run longer than the interval skips ticks.
      const tick = () => {
        if (running !== undefined || stopped) return;
        running = service
          .run({ trigger: 'schedule', signal: controller.signal })
          .catch((error: unknown) => {
            log.error({ error: describe(error) }, 'backup scheduler failed');
          })
          .finally(() => {
            running = undefined;
          });
      };
      tick();
      const timer = setInterval(tick, checkIntervalSeconds * 1000);
      timer.unref();
      return async () => {
        stopped = true;
        clearInterval(timer);
        controller.abort();
        await running;
      };
    },
  };
  return service;
}
