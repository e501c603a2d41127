/**
 * Builds the broker's HTTP app in-process for unit tests: a real token verifier against a
 * real loopback Zuul issuer, the given policies, a FakeOpenBao and a logger whose every
 * line is kept for inspection.
 */
import { Writable } from 'node:stream';
import type { AuditLog } from '../../src/audit/log.js';
import type { BuildBinder } from '../../src/broker/build-binding.js';
import { staticPolicySource } from '../../src/broker/policy-store.js';
import { IssuerConfigSchema } from '../../src/config/schema.js';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { createApp } from '../../src/http/app.js';
import { createHttpMetrics } from '../../src/http/metrics.js';
import type { RateLimiter } from '../../src/http/rate-limit.js';
import { createTokenVerifier } from '../../src/identity/verifier.js';
import { createLogger } from '../../src/main.js';
import { formatProblem, parsePolicyFiles } from '../../src/policy/load.js';
import { captureText } from './canary.js';
import { FakeOpenBao } from './fake-openbao.js';

export const AUDIENCE = 'https://secrets.example.org';

export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    const text = chunk.toString('utf8');
    this.lines.push(...text.split('\n').filter(Boolean));
    captureText('log', text);
    callback();
  }
  text(): string {
    return this.lines.join('\n');
  }
  entries(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

export function policySetFrom(yamlText: string) {
  const result = parsePolicyFiles([{ name: 'test.yaml', text: yamlText }], {
    maxTtlSeconds: 3600,
    supportedKinds: ['kv'],
  });
  if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
  return result.set;
}

export async function buildTestApp(
  policyYaml: string,
  options: {
    issuer?: ZuulIssuer;
    rateLimiter?: RateLimiter;
    binding?: BuildBinder;
    audit?: AuditLog;
  } = {},
) {
  const issuer = options.issuer ?? (await ZuulIssuer.start({ modulusLength: 2048 }));
  const logs = new LogCapture();
  const logger = createLogger('debug', logs);
  const verifier = createTokenVerifier(
    [IssuerConfigSchema.parse({ issuer: issuer.issuer, audience: AUDIENCE })],
    {
      maxTokenBytes: 8192,
      logger,
    },
  );
  const openbao = new FakeOpenBao();
  const metrics = createHttpMetrics();
  const app = createApp({
    verifier,
    policies: staticPolicySource(policySetFrom(policyYaml)),
    openbao,
    logger,
    metrics,
    limits: { maxBodyBytes: 16384, maxTokenBytes: 8192 },
    wrapTtlSeconds: 60,
    ...(options.rateLimiter ? { rateLimiter: options.rateLimiter } : {}),
    ...(options.binding ? { binding: options.binding } : {}),
    ...(options.audit ? { audit: options.audit } : {}),
  });
  return {
    app,
    issuer,
    openbao,
    logs,
    metrics,
    close: async () => {
      verifier.close();
      if (!options.issuer) await issuer.close();
    },
  };
}
