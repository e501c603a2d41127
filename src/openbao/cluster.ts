/**
 * Cluster routing toward an OpenBao raft cluster (ADR 0012): with several configured
 * addresses, every call goes to the node that is active now, found by asking each
 * configured node's `sys/health` (200 = active), and every read carries headers that make
 * any node answer it from the active node's state. Nothing here ever follows a redirect:
 * a 307 only says that the node we asked cannot reach the active node, and the answer to
 * that is to look again among the configured addresses (ADR 0007: the token goes nowhere
 * else).
 *
 * Why every read is fresh: a standby answers reads from its own raft log, which may lag
 * by ~100 ms in health and without bound when its disk is full (openbao-ha.md §0.1,
 * §3.1), and `sys/health` does not tell. The ledger's read-modify-write, the revocation
 * epoch, rotation state and lock, a rotation's test and a job's read of a just-promoted
 * secret must all see the last committed write.
 */
/** What one node looked like at the last probe. */
export type NodeRole = 'active' | 'standby' | 'sealed' | 'uninitialized' | 'unreachable';

export interface NodeView {
  /** Position in `openbao.addresses` (metric label; the address itself is config). */
  readonly index: number;
  readonly address: string;
  readonly role: NodeRole;
  /** `raft_applied_index` from `sys/leader`, when the node answered it. */
  readonly appliedIndex?: number;
}

export interface ClusterView {
  readonly nodes: readonly NodeView[];
  /** Index into `nodes` of the active node, if one answered 200. */
  readonly active?: number;
  /** Raft entries the most lagging reachable node is behind the most advanced one. */
  readonly maxLag?: number;
  /** `sys/storage/raft/autopilot/state`, when the broker's token may read it. */
  readonly autopilot?:
    | { readonly healthy: boolean; readonly failureTolerance: number }
    | { readonly unknown: 'permission denied' | 'unavailable' };
  /** The active node's version, from its `sys/health`. */
  readonly version?: string;
  readonly observedAt: number;
}

/** A lag (raft entries) beyond which a node counts as lagging in readiness and metrics. */
export const LAGGING_ENTRIES = 100;

/** One probe of one node: the client's own bounded transport, anonymous. */
export type NodeProbe = (
  index: number,
  path: '/sys/health' | '/sys/leader',
) => Promise<{ status: number; body: unknown }>;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function roleOf(status: number, body: unknown): NodeRole {
  if (status === 0) return 'unreachable';
  if (isObject(body)) {
    if (body.initialized === false) return 'uninitialized';
    if (body.sealed === true) return 'sealed';
    if (status === 200 && body.standby !== true) return 'active';
    if (body.standby === true) return 'standby';
  }
  return status === 503 ? 'sealed' : 'unreachable';
}

/**
 * The headers that make a read fresh on whichever node receives it: an `X-Vault-Index`
 * no node has reached (this cluster's id, the largest raft index) together with
 * `X-Vault-Inconsistent: forward-active-node`. A standby then forwards the read to the
 * active node, and the active node answers it (measured on 2.7.2: 10 of 10 reads of a
 * key written 0 ms earlier were 200 through a standby, 404 without the headers). With no
 * active node the standby answers 307 or 500, which fails the read: nothing stale.
 */
export function freshReadHeaders(clusterId: string): Record<string, string> {
  const index = Buffer.from(
    JSON.stringify({ cluster: clusterId, value: '18446744073709551615' }),
  ).toString('base64');
  return { 'X-Vault-Index': index, 'X-Vault-Inconsistent': 'forward-active-node' };
}

/**
 * OpenBao's (and raft's) words for "no leader took this": not active and no active node
 * known, leadership lost while committing, or a leader that could not store the log entry
 * (its disk full: it steps down at once, openbao-ha.md §3.1). Another node may be active a
 * moment later; a write that got one of these has an unknown outcome.
 */
const NO_LEADER = [
  'active cluster node not found',
  'leadership lost',
  'node is not the leader',
  'unable to store logs',
];

/** A redirect (a standby that cannot forward) or one of {@link NO_LEADER}. */
export function isNoActiveNode(status: number, errors: readonly string[]): boolean {
  if (status >= 300 && status < 400) return true;
  return status === 500 && errors.some((e) => NO_LEADER.some((words) => e.includes(words)));
}

export interface ClusterRouter {
  /** The active node's index, looked up when unknown; undefined when none is active. */
  active(): Promise<number | undefined>;
  /** Forget the active node (it failed, redirected, or said it is not active). */
  lost(index: number): void;
  /** Asks this node's `sys/health` now: is it (still) the active node? */
  isActiveNow(index: number): Promise<boolean>;
  /** Fresh-read headers, once the cluster's id is known. */
  readHeaders(): Record<string, string>;
  /** Probes every node (readiness, metrics); also refreshes the active node. */
  view(): Promise<ClusterView>;
  /** Keeps a view completed by the caller (autopilot) as the last one. */
  record(view: ClusterView): void;
  last(): ClusterView | undefined;
}

export function createClusterRouter(
  addresses: readonly string[],
  probe: NodeProbe,
  options: {
    readonly now?: () => number;
    /** How long "no node is active" is believed before asking again (default 200 ms). */
    readonly negativeCacheMs?: number;
  } = {},
): ClusterRouter {
  const now = options.now ?? Date.now;
  const negativeCacheMs = options.negativeCacheMs ?? 200;
  let activeIndex: number | undefined;
  let noneUntil = 0;
  let clusterId = '';
  let discovering: Promise<number | undefined> | undefined;
  let lastView: ClusterView | undefined;

  async function healthOf(index: number): Promise<{ role: NodeRole; body: unknown }> {
    try {
      const { status, body } = await probe(index, '/sys/health');
      return { role: roleOf(status, body), body };
    } catch {
      return { role: 'unreachable', body: undefined };
    }
  }

  function learn(roles: readonly { role: NodeRole; body: unknown }[]): number | undefined {
    const found = roles.findIndex((r) => r.role === 'active');
    for (const r of roles) {
      if (r.role !== 'unreachable' && isObject(r.body) && typeof r.body.cluster_id === 'string') {
        clusterId = r.body.cluster_id;
        break;
      }
    }
    activeIndex = found >= 0 ? found : undefined;
    noneUntil = activeIndex === undefined ? now() + negativeCacheMs : 0;
    return activeIndex;
  }

  function discover(): Promise<number | undefined> {
    discovering ??= Promise.all(addresses.map((_, i) => healthOf(i)))
      .then(learn)
      .finally(() => {
        discovering = undefined;
      });
    return discovering;
  }

  return {
    async active() {
      if (activeIndex !== undefined) return activeIndex;
      if (now() < noneUntil) return undefined;
      return discover();
    },
    lost(index) {
      if (activeIndex === index) activeIndex = undefined;
    },
    async isActiveNow(index) {
      return (await healthOf(index)).role === 'active';
    },
    readHeaders() {
      return clusterId ? freshReadHeaders(clusterId) : {};
    },
    async view() {
      const roles = await Promise.all(addresses.map((_, i) => healthOf(i)));
      learn(roles);
      const indexes = await Promise.all(
        roles.map(async (r, i) => {
          if (r.role === 'unreachable') return undefined;
          try {
            const { status, body } = await probe(i, '/sys/leader');
            const applied = isObject(body) ? body.raft_applied_index : undefined;
            return status === 200 && typeof applied === 'number' ? applied : undefined;
          } catch {
            return undefined;
          }
        }),
      );
      const known = indexes.filter((x): x is number => x !== undefined);
      const nodes: NodeView[] = roles.map((r, i) => {
        const appliedIndex = indexes[i];
        return {
          index: i,
          address: addresses[i] ?? '',
          role: r.role,
          ...(appliedIndex === undefined ? {} : { appliedIndex }),
        };
      });
      const activeBody = activeIndex === undefined ? undefined : roles[activeIndex]?.body;
      const version =
        isObject(activeBody) && typeof activeBody.version === 'string' ? activeBody.version : '';
      lastView = {
        nodes,
        ...(version ? { version } : {}),
        ...(activeIndex === undefined ? {} : { active: activeIndex }),
        ...(known.length > 1 ? { maxLag: Math.max(...known) - Math.min(...known) } : {}),
        observedAt: now(),
      };
      return lastView;
    },
    record(view) {
      lastView = view;
    },
    last() {
      return lastView;
    },
  };
}

/** Raft entries `node` has applied fewer than the most advanced node; undefined if unknown. */
export function indexLag(view: ClusterView, node: NodeView): number | undefined {
  const known = view.nodes.flatMap((n) => (n.appliedIndex === undefined ? [] : [n.appliedIndex]));
  if (node.appliedIndex === undefined || known.length === 0) return undefined;
  return Math.max(...known) - node.appliedIndex;
}

/** A node behind the most advanced one by more than {@link LAGGING_ENTRIES}. */
export function isLagging(view: ClusterView, node: NodeView): boolean {
  return (indexLag(view, node) ?? 0) > LAGGING_ENTRIES;
}

/**
 * Readiness words for a cluster with an active node: `degraded` when a configured node is
 * unreachable, sealed or lagging, or autopilot says unhealthy or no failure tolerance
 * (the broker still serves: a quorum does; the operator must act before the next loss).
 */
export function describeCluster(view: ClusterView): {
  readonly status: 'ok' | 'degraded';
  readonly detail: string;
} {
  const parts = view.nodes.map((n) => {
    const role = n.role === 'standby' && isLagging(view, n) ? 'lagging' : n.role;
    return `${n.address} ${role}`;
  });
  const unwell = view.nodes.some(
    (n) => (n.role !== 'active' && n.role !== 'standby') || isLagging(view, n),
  );
  let autopilot = '';
  let autopilotUnwell = false;
  if (view.autopilot !== undefined) {
    if ('healthy' in view.autopilot) {
      autopilot = `; autopilot ${view.autopilot.healthy ? 'healthy' : 'unhealthy'}, failure tolerance ${view.autopilot.failureTolerance}`;
      autopilotUnwell = !view.autopilot.healthy || view.autopilot.failureTolerance < 1;
    } else {
      autopilot = `; autopilot state unknown (${view.autopilot.unknown})`;
    }
  }
  const lag = view.maxLag === undefined ? '' : `; max index lag ${view.maxLag}`;
  return {
    status: unwell || autopilotUnwell ? 'degraded' : 'ok',
    detail: `OpenBao cluster: ${parts.join(', ')}${lag}${autopilot}`,
  };
}
