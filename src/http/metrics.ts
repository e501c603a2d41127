/**
 * Prometheus metrics of the broker, served by /metrics. Labels are closed sets (route
 * pattern, status, decision, OpenBao operation and error kind, key set outcome): never a
 * secret name from a request, a path, a token, an identity, an issuer URL or a build id.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface HttpMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly duration: Histogram<'route'>;
  readonly decisions: Counter<'outcome'>;
  readonly policyReloads: Counter<'outcome'>;
  /** One observation per OpenBao call (after its retries); outcome `ok` or an error kind. */
  readonly openbaoCalls: Histogram<'operation' | 'outcome'>;
  /** Requests repeated by the OpenBao client's retries and failover. */
  readonly openbaoRetries: Counter<'operation'>;
  /** Key set fetches of all issuers together, by outcome (`ok` or a failure class). */
  readonly keySetRefreshes: Counter<'outcome'>;
  /** zuul-web build lookups of the build binding, by outcome (running, ended, unknown or a failure class). */
  readonly buildLookups: Counter<'outcome'>;
  /** Audit writes (events and recovery probes) that failed: each failed event is a refusal. */
  readonly auditWriteFailures: Counter;
  /** Dynamic secrets delivered with an OpenBao lease (database credentials). */
  readonly leasesIssued: Counter;
}

export function createHttpMetrics(options: { defaultMetrics?: boolean } = {}): HttpMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'zsb_' });
  return {
    registry,
    requests: new Counter({
      name: 'zsb_http_requests_total',
      help: 'HTTP requests by route pattern, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'zsb_http_request_duration_seconds',
      help: 'HTTP request duration by route pattern',
      labelNames: ['route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    policyReloads: new Counter({
      name: 'zsb_policy_reloads_total',
      help: 'Policy reloads by outcome (applied, rejected)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    decisions: new Counter({
      name: 'zsb_policy_decisions_total',
      help: 'Policy decisions on fetch requests by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    openbaoCalls: new Histogram({
      name: 'zsb_openbao_call_duration_seconds',
      help: 'OpenBao calls (retries included) by operation and outcome (ok or error kind)',
      labelNames: ['operation', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    openbaoRetries: new Counter({
      name: 'zsb_openbao_retries_total',
      help: 'OpenBao requests repeated after a transient failure (retry or failover), by operation',
      labelNames: ['operation'],
      registers: [registry],
    }),
    leasesIssued: new Counter({
      name: 'zsb_leases_issued_total',
      help: 'Dynamic secrets delivered with an OpenBao lease',
      registers: [registry],
    }),
    keySetRefreshes: new Counter({
      name: 'zsb_keyset_refreshes_total',
      help: 'Issuer key set fetches by outcome (ok, timeout, unreachable, redirect, http_status, too_large, invalid)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    buildLookups: new Counter({
      name: 'zsb_build_lookups_total',
      help: 'zuul-web build lookups of the build binding by outcome (running, ended, unknown, timeout, unreachable, redirect, http_status, too_large, invalid)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    auditWriteFailures: new Counter({
      name: 'zsb_audit_write_failures_total',
      help: 'Audit log writes that failed (the request that needed one was refused)',
      registers: [registry],
    }),
  };
}

/**
 * Build tokens this instance created that are neither expired nor revoked: each holds
 * one build's leases, which OpenBao revokes with it. Counted when scraped.
 */
export function registerBuildTokenGauge(registry: Registry, active: () => number): void {
  new Gauge({
    name: 'zsb_build_tokens_active',
    help: "Live build tokens created by this instance (each holds a build's leases)",
    registers: [registry],
    collect() {
      this.set(active());
    },
  });
}
