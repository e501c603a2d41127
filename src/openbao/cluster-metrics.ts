/**
 * Gauges of the OpenBao cluster as the broker sees it (ADR 0012), for alerting beside
 * OpenBao's own telemetry: which configured node is active, reachable or lagging, how far
 * behind, and autopilot's health and failure tolerance. Label `node` is the node's position
 * in `openbao.addresses` (0, 1, 2): closed, and no address in a label.
 */
import { Gauge, type Registry } from 'prom-client';
import { type ClusterView, indexLag, isLagging, type NodeView } from './cluster.js';

/** Probes at most this often, however many gauges and scrapes ask. */
const REFRESH_MS = 1000;

export function registerClusterGauges(
  registry: Registry,
  /** Probes the cluster (readiness does the same); resolves with the new view. */
  refresh: () => Promise<ClusterView | undefined>,
): void {
  let pending: Promise<ClusterView | undefined> | undefined;
  let at = 0;
  let last: ClusterView | undefined;
  const view = async () => {
    if (Date.now() - at < REFRESH_MS && pending === undefined) return last;
    pending ??= refresh()
      .catch(() => undefined)
      .then((v) => {
        last = v;
        at = Date.now();
        return v;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
  const perNode = (name: string, help: string, value: (v: ClusterView, n: NodeView) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['node'],
      registers: [registry],
      async collect() {
        const v = await view();
        if (v === undefined) return;
        for (const n of v.nodes) this.set({ node: String(n.index) }, value(v, n));
      },
    });
  perNode('zsb_openbao_node_active', 'Whether this configured OpenBao node is active', (_v, n) =>
    n.role === 'active' ? 1 : 0,
  );
  perNode(
    'zsb_openbao_node_up',
    'Whether this configured OpenBao node answers unsealed (active or standby)',
    (_v, n) => (n.role === 'active' || n.role === 'standby' ? 1 : 0),
  );
  perNode(
    'zsb_openbao_node_lagging',
    'Whether this configured node is more than 100 raft entries behind the most advanced',
    (v, n) => (isLagging(v, n) ? 1 : 0),
  );
  perNode(
    'zsb_openbao_node_index_lag',
    'Raft entries this node has applied fewer than the most advanced node (-1 = unknown)',
    (v, n) => indexLag(v, n) ?? -1,
  );
  new Gauge({
    name: 'zsb_openbao_autopilot_failure_tolerance',
    help: 'Voters the cluster may lose and keep quorum, per autopilot (-1 = unknown)',
    registers: [registry],
    async collect() {
      const a = (await view())?.autopilot;
      this.set(a !== undefined && 'healthy' in a ? a.failureTolerance : -1);
    },
  });
  new Gauge({
    name: 'zsb_openbao_autopilot_healthy',
    help: 'Autopilot health of the cluster: 1 healthy, 0 unhealthy, -1 unknown',
    registers: [registry],
    async collect() {
      const a = (await view())?.autopilot;
      this.set(a !== undefined && 'healthy' in a ? (a.healthy ? 1 : 0) : -1);
    },
  });
}
