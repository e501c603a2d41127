/**
 * The contract every rotation provider implements (AWS Secrets Manager's four steps).
 * The engine (protocol.ts) records the pending value before any side effect and calls
 * each step again after a crash, so every method must be idempotent: calling it twice
 * with the same run has the effect of calling it once.
 */
import type { RotationRun } from './state.js';

export interface CreatedValue {
  /** What the rotation starts from (KV version, or a provider's own marker). */
  readonly base: number | string;
  readonly pending: Readonly<Record<string, unknown>>;
}

export interface RotationDriver {
  /**
   * How long after promotion `finish` waits (milliseconds): a grace period in which the
   * previous value keeps working for jobs that fetched it just before (application
   * credentials). The run stays recorded at `promoted` meanwhile; absent = finish at once.
   */
  readonly finishAfterMs?: number;
  /** Makes the pending value. No side effect anywhere: it is recorded before `set`. */
  create(): Promise<CreatedValue>;
  /** Throws ConflictError when someone changed the current value since `run.base`. */
  checkUnchanged(run: RotationRun): Promise<void>;
  /** Makes the target accept the pending value. */
  set(run: RotationRun): Promise<void>;
  /** Proves the pending value works; RotationTestFailed when it does not. */
  test(run: RotationRun): Promise<void>;
  /**
   * Makes the pending value current (check-and-set against `run.base`); returns the new
   * version. Already promoted by this run → the same answer; changed by someone else →
   * ConflictError.
   */
  promote(run: RotationRun): Promise<number | string>;
  /** Clean-up after promotion (e.g. destroy the old credential). */
  finish(run: RotationRun): Promise<void>;
  /** Undoes `set` so that the current value works again (abort path). */
  rollback(run: RotationRun): Promise<void>;
}

/** The current value changed under the rotation: it aborts without overwriting. */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

/** The pending value does not work on the target: the rotation aborts and rolls back. */
export class RotationTestFailed extends Error {
  override readonly name = 'RotationTestFailed';
}

/**
 * A step stopped by the broker's shutdown before it said how it ended: whatever it did is
 * unknown, so the run stays recorded at its step and the next holder runs the step again.
 */
export class RotationInterrupted extends Error {
  override readonly name = 'RotationInterrupted';
}

/** A setting or stored value that no retry can fix (e.g. a login missing its username). */
export class RotationConfigError extends Error {
  override readonly name = 'RotationConfigError';
}

/**
 * A failure of the rotation's target described in our own words (never the target's own
 * text, which may quote values): safe to log and store. Transient unless it is one of the
 * errors above.
 */
export class TargetError extends Error {
  override readonly name = 'TargetError';
}

/** Deep equality of JSON values, for "did this run already promote its value?". */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) =>
    sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}
