/**
 * The rotation protocol: lock, create, set, test, promote, finish. Modelled on AWS
 * Secrets Manager's four steps, with the state in OpenBao KV (state.ts):
 *
 * - the pending value and a rotation id are recorded before any side effect, in the one
 *   `run` slot of the record, so there is never a second pending value;
 * - each completed step is recorded; after a crash the next holder resumes at the
 *   recorded step and repeats the step in flight (every driver step is idempotent);
 * - promotion is check-and-set on the version the run started from; a secret someone
 *   else edited meanwhile aborts the run without overwriting it, and the target is rolled
 *   back so that the current value works;
 * - the lock is the record itself: holder and expiry, written with check-and-set. A dead
 *   holder's lock expires and is taken over; a holder that comes back loses its next
 *   write (LockLostError) and stops before its next side effect.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { OpenBaoError } from '../openbao/errors.js';
import {
  ConflictError,
  RotationConfigError,
  type RotationDriver,
  RotationInterrupted,
  RotationTestFailed,
  TargetError,
} from './driver.js';
import {
  LockLostError,
  type RotationRecord,
  type RotationRun,
  type RotationStateStore,
  type StoredRecord,
} from './state.js';

/** Points between steps where a fault-injection hook may run (tests kill the process there). */
export const ROTATION_BOUNDARIES = [
  'locked',
  'created',
  'set-applied',
  'set',
  'tested',
  'promote-applied',
  'promoted',
  'finished',
] as const;
export type RotationBoundary = (typeof ROTATION_BOUNDARIES)[number];

export type RotationOutcome =
  | {
      readonly outcome: 'rotated';
      readonly version: number | string;
      readonly resumed: boolean;
      /** The previous value is retired (the driver's `finish`) at the first run after this. */
      readonly finishAfter?: string;
    }
  /** A promoted run retired the previous value after its grace period. */
  | { readonly outcome: 'finished'; readonly version: number | string }
  /** A promoted run waits for its grace period: no new rotation starts before `until`. */
  | { readonly outcome: 'waiting'; readonly until: string }
  | { readonly outcome: 'not-due' }
  | { readonly outcome: 'busy' }
  | { readonly outcome: 'aborted'; readonly reason: string }
  | { readonly outcome: 'failed'; readonly step: string; readonly reason: string }
  | { readonly outcome: 'lost-lock' }
  | { readonly outcome: 'stopped' };

/** Fields to change; `undefined` removes one. */
type RecordPatch = { [K in keyof RotationRecord]?: RotationRecord[K] | undefined };

export interface RotationLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RunOptions {
  readonly store: RotationStateStore;
  /** Who holds the lock: unique per process. */
  readonly instanceId: string;
  readonly lockTtlMs: number;
  /** Rotate even when not due (`zsb rotate NAME`). */
  readonly force: boolean;
  readonly isDue: (record: RotationRecord, now: Date) => boolean;
  readonly logger: RotationLogger;
  /** Attempts per step for transient errors, with full-jitter exponential backoff. */
  readonly attempts?: number;
  readonly retryBaseMs?: number;
  readonly now?: () => number;
  readonly signal?: AbortSignal;
  readonly onBoundary?: (boundary: RotationBoundary) => Promise<void> | void;
  /** Waits between attempts; injectable so a model test schedules it like any other step. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** The run as recorded cannot succeed: someone else's edit, a failed test, a bad value. */
function endsTheRun(error: unknown): boolean {
  return (
    error instanceof ConflictError ||
    error instanceof RotationTestFailed ||
    error instanceof RotationConfigError
  );
}

/** Errors a retry cannot fix. */
function isDefinitive(error: unknown): boolean {
  return (
    endsTheRun(error) ||
    error instanceof LockLostError ||
    (error instanceof OpenBaoError && !error.retryable)
  );
}

/** What may be logged and stored of an error: our own words, never upstream text. */
export function describeError(error: unknown): string {
  if (error instanceof OpenBaoError || error instanceof TargetError || endsTheRun(error)) {
    return (error as Error).message;
  }
  const code = (error as { code?: unknown } | null)?.code;
  // pg and node:net errors: the code says enough; their messages may quote statements.
  return typeof code === 'string' ? `target error ${code}` : 'unexpected error';
}

export async function runRotation(
  name: string,
  driver: RotationDriver,
  options: RunOptions,
): Promise<RotationOutcome> {
  const now = options.now ?? Date.now;
  const attempts = options.attempts ?? 3;
  const retryBaseMs = options.retryBaseMs ?? 500;
  const log = options.logger;
  const boundary = async (b: RotationBoundary) => {
    await options.onBoundary?.(b);
  };

  let stored: StoredRecord = await options.store.read(name);
  const holder = stored.record.holder;
  if (holder !== undefined && holder.id !== options.instanceId && holder.until > now()) {
    return { outcome: 'busy' };
  }
  // A promoted run waiting for its grace period: nothing to do, and nothing is written.
  const waitingUntil = stored.record.run?.finishAfter;
  if (waitingUntil !== undefined && Date.parse(waitingUntil) > now()) {
    return { outcome: 'waiting', until: waitingUntil };
  }
  if (
    !options.force &&
    stored.record.run === undefined &&
    !options.isDue(stored.record, new Date(now()))
  ) {
    return { outcome: 'not-due' };
  }

  /** Writes the record with the lock renewed; LockLostError when someone wrote first. */
  const save = async (patch: RecordPatch, keepLock = true): Promise<void> => {
    const next: Record<string, unknown> = { ...stored.record, ...patch };
    if (keepLock) next.holder = { id: options.instanceId, until: now() + options.lockTtlMs };
    else delete next.holder;
    for (const [k, v] of Object.entries(next)) if (v === undefined) delete next[k];
    stored = await options.store.write(name, next as unknown as RotationRecord, stored.version);
  };

  const retrying = async <T>(step: string, action: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await action();
      } catch (error) {
        if (isDefinitive(error) || attempt >= attempts || options.signal?.aborted) throw error;
        const delay = Math.random() * retryBaseMs * 2 ** (attempt - 1);
        log.warn(
          { rotation: name, step, attempt, error: describeError(error) },
          'rotation step failed; retrying',
        );
        await (options.sleep ?? sleep)(delay);
      }
    }
  };

  try {
    await save({});
  } catch (error) {
    if (error instanceof LockLostError) return { outcome: 'busy' };
    throw error;
  }
  await boundary('locked');

  let run: RotationRun | undefined = stored.record.run;
  const resumed = run !== undefined;
  let step = run?.step ?? 'create';
  try {
    if (run === undefined) {
      const created = await retrying('create', () => driver.create());
      run = {
        id: randomUUID(),
        step: 'created',
        startedAt: new Date(now()).toISOString(),
        ...created,
      };
      await save({ run });
      log.info({ rotation: name, rotationId: run.id }, 'rotation started');
      await boundary('created');
    } else {
      log.info({ rotation: name, rotationId: run.id, step: run.step }, 'rotation resumed');
    }
    const current: RotationRun = run;
    const advance = async (
      to: RotationRun['step'],
      extra: RecordPatch = {},
      fields: Partial<RotationRun> = {},
    ) => {
      run = { ...current, ...fields, step: to };
      await save({ run, ...extra });
    };

    if (options.signal?.aborted) return await release();
    if (run.step === 'created') {
      step = 'set';
      await retrying('set', () => driver.checkUnchanged(current));
      // Renew the lock right before the side effect: a holder that was paused past its
      // lock's expiry fails here instead of touching the target.
      await save({});
      await retrying('set', () => driver.set(current));
      await boundary('set-applied');
      await advance('set');
      await boundary('set');
    }
    if (options.signal?.aborted) return await release();
    if (run.step === 'set') {
      step = 'test';
      await retrying('test', () => driver.test(current));
      await advance('tested');
      await boundary('tested');
    }
    if (options.signal?.aborted) return await release();
    let version: number | string | undefined = stored.record.lastVersion;
    if (run.step === 'tested') {
      step = 'promote';
      await save({});
      version = await retrying('promote', () => driver.promote(current));
      await boundary('promote-applied');
      await advance(
        'promoted',
        { lastVersion: version },
        { promotedAt: new Date(now()).toISOString() },
      );
      await boundary('promoted');
    }
    step = 'finish';
    const promoted: RotationRun = run;
    const finishAt = graceEnd(promoted, driver.finishAfterMs, now());
    if (finishAt !== undefined && finishAt > now()) {
      // The previous value keeps working for its grace period; the run stays recorded
      // and the first run after `finishAfter` retires it.
      const finishAfter = new Date(finishAt).toISOString();
      await save(
        {
          run: { ...promoted, finishAfter },
          lastSuccess: promoted.promotedAt ?? new Date(now()).toISOString(),
          lastOutcome: 'rotated',
          lastError: undefined,
          failures: 0,
        },
        false,
      );
      log.info(
        { rotation: name, rotationId: promoted.id, version, finishAfter },
        'rotation promoted; the previous value is retired after the grace period',
      );
      return { outcome: 'rotated', version: version ?? '', resumed, finishAfter };
    }
    await retrying('finish', () => driver.finish(promoted));
    await save(
      {
        run: undefined,
        lastSuccess: promoted.promotedAt ?? new Date(now()).toISOString(),
        lastOutcome: 'rotated',
        lastError: undefined,
        failures: 0,
      },
      false,
    );
    await boundary('finished');
    log.info({ rotation: name, rotationId: current.id, version, resumed }, 'rotation finished');
    if (promoted.finishAfter !== undefined) return { outcome: 'finished', version: version ?? '' };
    return { outcome: 'rotated', version: version ?? '', resumed };
  } catch (error) {
    if (error instanceof LockLostError) {
      log.warn({ rotation: name, step }, 'rotation lock lost to another instance; stopping');
      return { outcome: 'lost-lock' };
    }
    // Shutdown stopped a step midway: its outcome is unknown, not failed. The run stays as
    // recorded, and the next holder runs the step again (steps are idempotent).
    if (error instanceof RotationInterrupted) return await release();
    const reason = describeError(error);
    const lastError = { at: new Date(now()).toISOString(), step, message: reason };
    const failures = (stored.record.failures ?? 0) + 1;
    // A run that can never succeed as recorded is undone; once promoted it only finishes.
    if (run !== undefined && run.step !== 'promoted' && endsTheRun(error)) {
      const aborting = run;
      try {
        await retrying('rollback', () => driver.rollback(aborting));
      } catch (rollbackError) {
        // Keep the run: the next attempt resumes it and tries the abort path again.
        const message = `${reason}; rollback failed: ${describeError(rollbackError)}`;
        log.error(
          { rotation: name, rotationId: aborting.id, step },
          `rotation abort incomplete: ${message}`,
        );
        await save(
          { lastError: { ...lastError, message }, failures, lastOutcome: 'failed' },
          false,
        ).catch(() => {});
        return { outcome: 'failed', step, reason: message };
      }
      await save({ run: undefined, lastError, failures, lastOutcome: 'aborted' }, false).catch(
        () => {},
      );
      log.error(
        { rotation: name, rotationId: aborting.id, step, error: reason },
        'rotation aborted; the current value is unchanged',
      );
      return { outcome: 'aborted', reason };
    }
    if (error instanceof RotationConfigError && run === undefined) {
      await save({ lastError, failures, lastOutcome: 'aborted' }, false).catch(() => {});
      log.error({ rotation: name, error: reason }, 'rotation cannot start');
      return { outcome: 'aborted', reason };
    }
    // Transient: the run stays recorded and resumes at the next attempt.
    await save({ lastError, failures, lastOutcome: 'failed' }, false).catch(() => {});
    log.error(
      { rotation: name, rotationId: run?.id, step, error: reason },
      'rotation failed; it resumes at the next attempt',
    );
    return { outcome: 'failed', step, reason };
  }

  async function release(): Promise<RotationOutcome> {
    await save({}, false);
    log.info({ rotation: name, step }, 'rotation paused for shutdown; the next holder resumes it');
    return { outcome: 'stopped' };
  }
}

/** When a promoted run may call `finish`: its promotion plus the driver's grace period. */
function graceEnd(
  run: RotationRun,
  finishAfterMs: number | undefined,
  now: number,
): number | undefined {
  if (finishAfterMs === undefined || finishAfterMs <= 0) return undefined;
  if (run.finishAfter !== undefined) return Date.parse(run.finishAfter);
  const promotedAt = run.promotedAt === undefined ? Number.NaN : Date.parse(run.promotedAt);
  // A run promoted by a broker that did not record promotedAt: its grace starts now.
  return (Number.isNaN(promotedAt) ? now : promotedAt) + finishAfterMs;
}
