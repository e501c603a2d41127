/**
 * Work on the serving thread in short slices (ADR 0018): a loop asks `due()` now and
 * then and, when its slice is used up, awaits `next()`, which lets the event loop run
 * the timers and requests that came due meanwhile. A request arriving during such work
 * waits for at most about one slice instead of for the whole of it.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** About a millisecond: a fetch's p99 may rise by 2 ms at most while a reload runs (#20). */
export const SLICE_MS = 1;

export class TimeSlices {
  private started = performance.now();

  constructor(private readonly budgetMs: number = SLICE_MS) {}

  /** Whether this slice has used up its budget. */
  due(): boolean {
    return performance.now() - this.started >= this.budgetMs;
  }

  /** Lets the event loop run, then starts a new slice. */
  async next(): Promise<void> {
    await nextTurn();
    this.started = performance.now();
  }

  /** Starts a new slice after the caller awaited something else (a worker's answer). */
  resume(): void {
    this.started = performance.now();
  }

  /** `next()` when due: between two steps of a loop, as `if (s.due()) await s.next()`. */
  async pause(): Promise<void> {
    if (this.due()) await this.next();
  }
}
