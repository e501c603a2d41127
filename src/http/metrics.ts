/**
 * Prometheus metrics of the HTTP layer. Labels are closed sets (route pattern, status,
 * decision): never a secret name from a request, a token, an identity or a build id.
 */
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

export interface HttpMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly duration: Histogram<'route'>;
  readonly decisions: Counter<'outcome'>;
  readonly policyReloads: Counter<'outcome'>;
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
  };
}
