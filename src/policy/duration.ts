/**
 * Durations in policy files (`ttl`, `every`, `jitter`).
 *
 * Accepted: a positive integer number of seconds (YAML `ttl: 900`), or a string
 * of one or more `<digits><unit>` parts with units d, h, m, s in that order,
 * each unit at most once (`30s`, `15m`, `1h30m`, `7d`). A bare digit string
 * (`"900"`) is refused: quoting a number is more often a typo than intent, and
 * one spelling per meaning keeps reviews simple.
 */

const UNIT_SECONDS: Readonly<Record<string, number>> = { d: 86400, h: 3600, m: 60, s: 1 };
const UNIT_ORDER = 'dhms';
// Nine digits per part bounds the total far below Number.MAX_SAFE_INTEGER.
const DURATION_PATTERN = /^(?:[0-9]{1,9}[dhms])+$/;
const PART_PATTERN = /([0-9]{1,9})([dhms])/g;

/** Seconds, or undefined when `v` is not a positive duration. */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') {
    return Number.isSafeInteger(v) && v > 0 ? v : undefined;
  }
  if (!DURATION_PATTERN.test(v)) return undefined;
  let total = 0;
  let lastUnit = -1;
  for (const [, digits, unit] of v.matchAll(PART_PATTERN)) {
    if (digits === undefined || unit === undefined) return undefined;
    const rank = UNIT_ORDER.indexOf(unit);
    // Units must strictly descend: `30m1h` and `1h1h` are refused as likely mistakes.
    if (rank <= lastUnit) return undefined;
    lastUnit = rank;
    total += Number(digits) * (UNIT_SECONDS[unit] ?? 0);
  }
  return total > 0 ? total : undefined;
}

/** `90` → `1m30s`, for messages. */
export function formatDuration(seconds: number): string {
  let rest = seconds;
  let out = '';
  for (const unit of UNIT_ORDER) {
    const size = UNIT_SECONDS[unit] ?? 1;
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out === '' ? '0s' : out;
}
