/**
 * vitest setup file (every test file, unit and integration): points the canary capture at
 * the run directory and wires the capture points that are not test code of their own:
 * every token the test issuer signs is registered as a canary, every audit event written
 * to a file or stream sink is captured. LogCapture (app.ts), the test OpenBao seeding
 * (real-openbao.ts, fake-openbao.ts) and child processes (process.ts) capture and register
 * themselves.
 */
import { inject } from 'vitest';
import { FileAuditSink, StreamAuditSink } from '../../src/audit/log.js';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { captureText, registerToken } from './canary.js';
import { LOG_DIR_ENV } from './canary-scan.js';

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

for (const [Sink, kind] of [
  [FileAuditSink, 'audit file'],
  [StreamAuditSink, 'audit stream'],
] as const) {
  once(Sink.prototype, () => {
    const append = Sink.prototype.append;
    Sink.prototype.append = function appendAndCapture(this: typeof Sink.prototype, lines: string) {
      captureText(kind, lines);
      return append.call(this, lines);
    };
  });
}
