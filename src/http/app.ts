/**
 * The HTTP app (hono), built from explicit dependencies; no I/O at import time.
 * Routes are thin: validate, call one broker use case, map its result. One canonical log
 * line per request; one error handler writing problem+json.
 */
import { randomUUID } from 'node:crypto';
import { type Context, Hono } from 'hono';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.js';
import type { BuildBinder } from '../broker/build-binding.js';
import type { DynamicDeps } from '../broker/dynamic.js';
import type { PolicySource } from '../broker/policy-store.js';
import type { TokenVerifier } from '../identity/types.js';
import type { HealthProbe, KvReader, TokenAdmin } from '../openbao/interface.js';
import { discardUnreadBody } from './body.js';
import { createLogSampler } from './log-sampler.js';
import type { HttpMetrics } from './metrics.js';
import { type ErrorCode, problem } from './problem.js';
import type { RateLimiter } from './rate-limit.js';
import { registerOpsRoutes } from './routes/ops.js';
import { registerSecretRoutes } from './routes/secrets.js';
import type { AppEnv, RequestLog } from './types.js';

export interface AppDeps {
  readonly verifier: TokenVerifier;
  readonly policies: PolicySource;
  readonly openbao: KvReader & TokenAdmin & HealthProbe;
  readonly logger: Logger;
  readonly metrics: HttpMetrics;
  readonly limits: {
    readonly maxBodyBytes: number;
    readonly maxTokenBytes: number;
    /** 401 request lines written one by one per second; the rest are summarised. */
    readonly unauthenticatedLogLinesPerSecond?: number;
  };
  readonly wrapTtlSeconds: number;
  readonly now?: () => number;
  /** Per-identity and global request limits; none when absent. */
  readonly rateLimiter?: RateLimiter;
  /** The broker's own OpenBao credential, for /readyz. */
  readonly credential?: { status(): { status: 'ok' | 'degraded' | 'failing'; detail: string } };
  /** For /readyz `dynamic`: whether the token role for dynamic secrets is there. */
  readonly dynamicCheck?: {
    status(): Promise<{ status: 'ok' | 'degraded' | 'failing'; detail: string }>;
  };
  /** Dynamic secrets and the build ledger; without it, only KV secrets are served. */
  readonly dynamic?: DynamicDeps;
  /** Issued, denied and revoked events; the broker always sets it (in-process tests may not). */
  readonly audit?: AuditLog;
  /** Build binding (ADR 0014): fetch and whoami only for running builds; none when absent. */
  readonly binding?: BuildBinder;
}

/** Known routes and their methods: anything else on them is 405, elsewhere 404. */
const ROUTES: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['/v1/fetch', ['POST']],
  ['/v1/secrets/:name', ['GET']],
  ['/v1/whoami', ['GET']],
  ['/v1/revoke', ['POST']],
  ['/healthz', ['GET']],
  ['/readyz', ['GET']],
  ['/metrics', ['GET']],
];

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const rejectedLines = createLogSampler(
    deps.limits.unauthenticatedLogLinesPerSecond ?? 50,
    deps.logger,
  );

  app.use('*', async (c, next) => {
    const requestId = randomUUID();
    const log: RequestLog = {};
    c.set('requestId', requestId);
    c.set('log', log);
    const started = performance.now();
    // Set before the handler builds its response: changing headers afterwards makes hono
    // rebuild the Response, which costs @hono/node-server its fast path (~0.3 ms a request).
    c.header('X-Request-Id', requestId);
    await next();
    discardUnreadBody(c, deps.limits.maxBodyBytes);
    const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
    const route =
      c.req.routePath && c.req.routePath !== '/*' && c.req.routePath !== '*'
        ? c.req.routePath
        : 'unmatched';
    const status = c.res.status;
    deps.metrics.requests.inc({ route, method: c.req.method, status: String(status) });
    deps.metrics.duration.observe({ route }, durationMs / 1000);
    if (route === '/healthz' || route === '/readyz' || route === '/metrics') {
      if (status < 500) return;
    }
    if (status === 401 && !rejectedLines.admit(log.reason ?? 'unauthenticated')) return;
    const identity = c.get('identity');
    deps.logger[status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info'](
      {
        requestId,
        method: c.req.method,
        route,
        status,
        durationMs,
        ...(identity
          ? {
              identity: {
                issuer: identity.issuer,
                tenant: identity.tenant,
                project: identity.project,
                secret: identity.secret,
                job: identity.job,
                pipeline: identity.pipeline,
                build: identity.build,
                ...(identity.buildProject ? { buildProject: identity.buildProject } : {}),
                ...(identity.branch ? { branch: identity.branch } : {}),
              },
            }
          : {}),
        ...(log.secrets ? { secrets: log.secrets } : {}),
        ...(log.grants ? { grants: log.grants } : {}),
        outcome: log.outcome ?? (status < 400 ? 'ok' : 'error'),
        ...(log.reason ? { reason: log.reason } : {}),
      },
      'request',
    );
  });

  // Bodies are read (bounded) by the POST routes after authentication, and what a route
  // left unread is dropped (bounded) after the answer: src/http/body.ts.

  registerSecretRoutes(app, deps);
  registerOpsRoutes(app, deps);

  for (const [path, methods] of ROUTES) {
    app.all(path, (c) => {
      c.header('Allow', methods.join(', '));
      return respondProblem(c, 'method_not_allowed', `use ${methods.join(' or ')}`);
    });
  }

  app.notFound((c) => respondProblem(c, 'not_found', 'no such route'));

  app.onError((error, c) => {
    // Only the error's class name is logged: messages of unexpected errors may carry anything.
    const log = c.get('log');
    log.outcome = 'internal';
    log.reason = `unexpected ${error instanceof Error ? error.name : typeof error}`;
    return respondProblem(c, 'internal', `internal error (request id ${c.get('requestId')})`);
  });

  return app;
}

export function respondProblem(
  c: Context<AppEnv>,
  code: ErrorCode,
  detail: string,
  headers: Record<string, string> = {},
) {
  const body = problem(code, detail, c.get('requestId'));
  const log = c.get('log');
  log.outcome ??= code;
  return c.json(body, body.status as 400, {
    ...headers,
    'Content-Type': 'application/problem+json',
  });
}
