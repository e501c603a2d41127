/**
 * vitest setup file (every test file, unit and integration): points the canary capture at
 * the run directory and wires the capture points that are not test code of their own:
 * every token the test issuer signs is registered as a canary, every audit event written
 * to a file or stream sink is captured, and events bound for process.stdout are kept in
 * memory (stdout-audit.ts) instead of printed. LogCapture (app.ts), the test OpenBao seeding
 * (real-openbao.ts, fake-openbao.ts) and child processes (process.ts) capture and register
 * themselves.
 */
import { inject } from 'vitest';
import { FileAuditSink, StreamAuditSink } from '../../src/audit/log.js';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { captureText, registerToken } from './canary.js';
import { LOG_DIR_ENV } from './canary-scan.js';
import { stdoutAudit } from './stdout-audit.js';

declare module 'vitest' {
  export interface ProvidedContext {
    zsbTestLogDir: string;
  }
}

process.env[LOG_DIR_ENV] ??= inject('zsbTestLogDir');

const PATCHED = Symbol.for('zsb.canary.patched');

/** Patches a prototype once per module instance (setup files run again for every test file). */
function once(prototype: object, patch: () => void): void {
  if (Object.hasOwn(prototype, PATCHED)) return;
  patch();
  Object.defineProperty(prototype, PATCHED, { value: true });
}

once(ZuulIssuer.prototype, () => {
  const sign = ZuulIssuer.prototype.sign;
  ZuulIssuer.prototype.sign = function signAndRegister(this: ZuulIssuer, ...args) {
    const token = sign.apply(this, args);
    registerToken(token);
    return token;
  };
});

once(FileAuditSink.prototype, () => {
  const append = FileAuditSink.prototype.append;
  FileAuditSink.prototype.append = function appendAndCapture(this: FileAuditSink, lines: string) {
    captureText('audit file', lines);
    return append.call(this, lines);
  };
});

// The product's default audit sink is stdout: in a test process that would print every
// event between the test results. Events bound for process.stdout are captured (for the
// canary scan, and for tests in stdoutAuditEvents()) instead of printed; other streams
// (a test's own) are written as usual.
once(StreamAuditSink.prototype, () => {
  const append = StreamAuditSink.prototype.append;
  StreamAuditSink.prototype.append = function appendAndCapture(
    this: StreamAuditSink,
    lines: string,
  ) {
    captureText('audit stream', lines);
    if (this.stream !== process.stdout) return append.call(this, lines);
    // The same sink (its closed state and all) writing to stdoutAudit instead.
    const redirected = Object.create(this, { stream: { value: stdoutAudit } });
    return append.call(redirected as StreamAuditSink, lines);
  };
});
