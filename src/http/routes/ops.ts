/** Operator routes: /healthz, /readyz, /metrics. No secrets, no credentials. */
import type { Hono } from 'hono';
import type { AppDeps } from '../app.js';
import type { AppEnv } from '../types.js';

type CheckStatus = 'ok' | 'degraded' | 'failing';
interface Check {
  readonly status: CheckStatus;
  readonly detail: string;
}

function worst(statuses: readonly CheckStatus[]): CheckStatus {
  if (statuses.includes('failing')) return 'failing';
  if (statuses.includes('degraded')) return 'degraded';
  return 'ok';
}

export function registerOpsRoutes(app: Hono<AppEnv>, deps: AppDeps): void {
  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get('/readyz', async (c) => {
    const health = await deps.openbao.health();
    let openbao: Check =
      health.status === 'ok'
        ? health.cluster
          ? { status: health.cluster.status, detail: health.cluster.detail }
          : { status: 'ok', detail: `OpenBao ${health.version} active` }
        : health.status === 'standby'
          ? { status: 'ok', detail: 'OpenBao standby (requests are forwarded)' }
          : {
              status: 'failing',
              detail: health.status === 'unreachable' ? health.detail : `OpenBao ${health.status}`,
            };
    const credential = deps.credential?.status();
    // A degraded cluster (a node lagging) must not hide an expiring credential.
    if (credential && openbao.status !== 'failing' && credential.status !== 'ok') {
      openbao = {
        status: worst([openbao.status, credential.status]),
        detail: `${openbao.detail}; ${credential.detail}`,
      };
    }
    const policies: Check = deps.policies.status();
    const issuerStatuses = deps.verifier.status();
    const issuers: Check = {
      status: worst(issuerStatuses.map((s) => s.status)),
      detail: issuerStatuses.map((s) => `${s.issuer}: ${s.detail}`).join('; '),
    };
    // Fail closed: an instance that cannot audit serves no secret, so it is not ready.
    const audit: Check | undefined = deps.audit ? await deps.audit.status() : undefined;
    // Never failing: without the token role only dynamic secrets fail, KV jobs are served.
    const dynamic: Check | undefined = deps.dynamicCheck
      ? await deps.dynamicCheck.status()
      : undefined;
    // Never failing: zuul-web down refuses only bound fetches (503), and equally on every
    // instance, so draining them all from the load balancer would help nobody.
    const bindingStatuses = deps.binding?.status() ?? [];
    const binding: Check | undefined =
      bindingStatuses.length === 0
        ? undefined
        : {
            status: worst(bindingStatuses.map((s) => s.status)),
            detail: bindingStatuses.map((s) => `${s.issuer}: ${s.detail}`).join('; '),
          };
    const ready =
      worst([openbao.status, policies.status, issuers.status, audit?.status ?? 'ok']) !== 'failing';
    const checks = {
      openbao,
      policies,
      issuers,
      ...(audit ? { audit } : {}),
      ...(dynamic ? { dynamic } : {}),
      ...(binding ? { binding } : {}),
    };
    return c.json({ ready, checks }, ready ? 200 : 503, {
      'Cache-Control': 'no-store',
    });
  });

  app.get('/metrics', async (c) => {
    const text = await deps.metrics.registry.metrics();
    return c.text(text, 200, { 'Content-Type': deps.metrics.registry.contentType });
  });
}
