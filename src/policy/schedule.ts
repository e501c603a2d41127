/**
 * Rotation schedules: cron expressions (croner's dialect: 5 or 6 fields, `@daily` and
 * friends, always in UTC) and intervals. Pure: the scheduler in src/rotation/ asks here
 * when a rotation is next due.
 */
import { Cron } from 'croner';

export function isCronExpression(expression: string): boolean {
  try {
    new Cron(expression, { timezone: 'UTC', paused: true }).stop();
    return true;
  } catch {
    return false;
  }
}

/** The first run of `expression` strictly after `after` (UTC), or undefined if none. */
export function nextCronRun(expression: string, after: Date): Date | undefined {
  const cron = new Cron(expression, { timezone: 'UTC', paused: true });
  const next = cron.nextRun(after) ?? undefined;
  cron.stop();
  return next;
}
