/**
 * Where audit events go in tests when the broker's audit sink is stdout (the product's
 * default): here, instead of the test process's stdout, so they do not print between the
 * test results. canary-setup.ts redirects them (after capturing them for the canary scan);
 * a test that needs them reads stdoutAuditEvents().
 */
import { Writable } from 'node:stream';

/** The last events kept; older ones are dropped (they were captured for the scan already). */
const MAX_LINES = 10000;
const lines: string[] = [];

export const stdoutAudit = new Writable({
  write(chunk: Buffer | string, _encoding, callback) {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
    callback();
  },
});

/** The audit events written to "stdout" by brokers of this test file, oldest first. */
export function stdoutAuditEvents(): Array<Record<string, unknown>> {
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}
