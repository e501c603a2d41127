/**
 * Request lines of unauthenticated requests (401: a missing, malformed, forged or expired
 * token) are written one by one only up to a budget per second. Beyond it they are counted
 * by reason and summarised in one line per second, so a flood of junk tokens can neither
 * fill the disk nor spend the CPU that valid requests need; metrics still count every one.
 */
export interface SampledLogger {
  warn(obj: object, msg: string): void;
}

export interface LogSampler {
  /** Whether this line may be written; otherwise it is counted under `reason`. */
  admit(reason: string): boolean;
  /** Writes the pending summary now (shutdown). */
  flush(): void;
}

const WINDOW_MS = 1000;

export function createLogSampler(
  perSecond: number,
  logger: SampledLogger,
  now: () => number = Date.now,
): LogSampler {
  let windowStart = 0;
  let written = 0;
  let suppressed = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (suppressed.size === 0) return;
    const reasons = Object.fromEntries(suppressed);
    const total = [...suppressed.values()].reduce((a, b) => a + b, 0);
    suppressed = new Map();
    logger.warn(
      { status: 401, suppressed: total, reasons, perSecond },
      'unauthenticated requests over the log budget, counted instead of logged',
    );
  };

  return {
    admit(reason) {
      const t = now();
      if (t - windowStart >= WINDOW_MS) {
        flush();
        windowStart = t;
        written = 0;
      }
      if (written < perSecond) {
        written++;
        return true;
      }
      // Reasons are a closed set of fixed phrases; the map stays small.
      suppressed.set(reason, (suppressed.get(reason) ?? 0) + 1);
      if (timer === undefined) {
        timer = setTimeout(flush, WINDOW_MS - (t - windowStart));
        timer.unref();
      }
      return false;
    },
    flush,
  };
}
