/**
 * A real, throw-away three-node OpenBao raft cluster on loopback (docs/high-availability.md,
 * openbao-ha.md §1.1): `bao server` processes with raft storage, the static seal (a fresh
 * 32-byte key per cluster) and `performance_multiplier = 1`, each on free ports with a
 * fresh data directory. Used by `zsb dev --ha` and by the cluster test suite, which kills
 * and restarts nodes; never by `zsb serve`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type DevOpenBao,
  findBaoBinary,
  freeLoopbackPort,
  stopProcess,
} from './openbao-dev-server.js';

export interface ClusterNode {
  readonly id: string;
  readonly address: string;
  readonly clusterPort: number;
  /** The raft data directory (a test may mount a small file system over it before start). */
  readonly dataDir: string;
  running(): boolean;
  /** SIGKILL by default: no graceful hand-over, like a lost machine. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the process again on the same data directory and ports. */
  start(): Promise<void>;
  /** The last lines of the server's log (for a failing test's message; no secrets there). */
  logTail(lines?: number): string;
  /** The process id while running. */
  pid(): number | undefined;
}

export interface OpenBaoCluster {
  readonly nodes: readonly ClusterNode[];
  readonly rootToken: string;
  readonly version: string;
  readonly binary: string;
  readonly dir: string;
  /** The node whose `sys/health` answers 200 now, if any. */
  activeNode(): Promise<ClusterNode | undefined>;
  /** Waits (bounded) until a node is active and answers an authenticated write. */
  waitForActive(timeoutMs?: number): Promise<ClusterNode>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  readonly binary?: string;
  readonly nodes?: number;
  /** Until all nodes are voters and a write works (default 60 s). */
  readonly startTimeoutMs?: number;
  /** Called with a node's data directory before its first start (e.g. to mount a tmpfs). */
  readonly prepareDataDir?: (nodeId: string, dataDir: string) => Promise<void>;
  /** Where the cluster's directory is created (default the system's temp directory). */
  readonly parentDir?: string;
  /**
   * A declarative file audit device per node (2.7 refuses to create one through the API):
   * called with the node's directory before its first start, answers the log file's path.
   */
  readonly auditFile?: (nodeId: string, nodeDir: string) => Promise<string | undefined>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One unauthenticated or root HTTP call; never throws for a status, only for no answer. */
export async function baoCall(
  address: string,
  method: string,
  apiPath: string,
  options: { token?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${address}/v1/${apiPath}`, {
    method,
    redirect: 'manual',
    headers: {
      ...(options.token ? { 'X-Vault-Token': options.token } : {}),
      'content-type': 'application/json',
    },
    signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = {};
  }
  return { status: res.status, body };
}

async function healthStatus(address: string): Promise<number> {
  try {
    return (await baoCall(address, 'GET', 'sys/health', { timeoutMs: 1000 })).status;
  } catch {
    return 0;
  }
}

function nodeConfig(
  dir: string,
  self: { id: string; port: number; clusterPort: number },
  peers: readonly { port: number }[],
  keyFile: string,
  dataDir: string,
  auditFile: string | undefined,
): string {
  const audit =
    auditFile === undefined
      ? ''
      : `audit "file" "file" {
  description = "zsb cluster audit"
  options { file_path = "${auditFile}" }
}
`;
  const joins = peers
    .map((p) => `  retry_join { leader_api_addr = "http://127.0.0.1:${p.port}" }`)
    .join('\n');
  return `storage "raft" {
  path    = "${dataDir}"
  node_id = "${self.id}"
  performance_multiplier = 1
${joins}
}
listener "tcp" {
  address         = "127.0.0.1:${self.port}"
  cluster_address = "127.0.0.1:${self.clusterPort}"
  tls_disable     = true
}
seal "static" {
  current_key_id = "k1"
  current_key    = "file://${keyFile}"
}
api_addr     = "http://127.0.0.1:${self.port}"
cluster_addr = "https://127.0.0.1:${self.clusterPort}"
ui           = false
log_level    = "info"
${audit}# ${dir}
`;
}

/** Distinct free ports; the small race with other processes is caught by the start check. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let i = 0; ports.size < count && i < count * 20; i++) ports.add(await freeLoopbackPort());
  if (ports.size < count) throw new Error('no free loopback ports');
  return [...ports];
}

/** Every server this process started and has not stopped: killed if the process exits first. */
const liveServers = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  liveServers.add(child);
  child.once('exit', () => liveServers.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A crashed test or playground must not leave raft servers running on the machine.
  process.once('exit', () => {
    for (const server of liveServers) server.kill('SIGKILL');
  });
}

class ProcessNode implements ClusterNode {
  private child: ChildProcess | undefined;
  private stderrTail = '';
  constructor(
    readonly id: string,
    readonly address: string,
    readonly clusterPort: number,
    readonly dataDir: string,
    private readonly binary: string,
    private readonly configFile: string,
    private readonly logFile: string,
  ) {}

  logTail(lines = 20): string {
    // The server logs to stderr (kept in memory, its tail); stdout (the file) has the banner.
    return this.tail().split('\n').slice(-lines).join('\n');
  }

  pid(): number | undefined {
    return this.running() ? this.child?.pid : undefined;
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && !this.child.signalCode;
  }

  /** The last lines the server wrote (for a start failure's message; no secrets there). */
  tail(): string {
    return this.stderrTail.trim();
  }

  async start(): Promise<void> {
    if (this.running()) return;
    const log = openSync(this.logFile, 'a');
    const child = spawn(this.binary, ['server', `-config=${this.configFile}`], {
      stdio: ['ignore', log, 'pipe'],
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    });
    closeSync(log);
    track(child);
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-8000);
    });
    this.child = child;
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        throw new Error(`bao server ${this.id} exited with ${child.exitCode}: ${this.tail()}`);
      }
      if ((await healthStatus(this.address)) !== 0) return;
      await sleep(100);
    }
    throw new Error(`bao server ${this.id} did not listen within 15 s: ${this.tail()}`);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child !== undefined) await stopProcess(this.child, signal);
  }
}

/** Starts the cluster; on any failure it stops what it started and throws, loudly. */
export async function startOpenBaoCluster(options: ClusterOptions = {}): Promise<OpenBaoCluster> {
  const binary = options.binary ?? findBaoBinary();
  const count = options.nodes ?? 3;
  const dir = await mkdtemp(path.join(options.parentDir ?? tmpdir(), 'zsb-raft-'));
  const keyFile = path.join(dir, 'unseal-k1.key');
  await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
  const ports = await freePorts(count * 2);
  const specs = Array.from({ length: count }, (_, i) => ({
    id: `n${i + 1}`,
    port: ports[2 * i] ?? 0,
    clusterPort: ports[2 * i + 1] ?? 0,
  }));
  const nodes: ProcessNode[] = [];
  for (const spec of specs) {
    const nodeDir = path.join(dir, spec.id);
    const dataDir = path.join(nodeDir, 'data');
    await mkdir(dataDir, { recursive: true });
    await options.prepareDataDir?.(spec.id, dataDir);
    const auditFile = await options.auditFile?.(spec.id, nodeDir);
    const configFile = path.join(nodeDir, 'config.hcl');
    const peers = specs.filter((s) => s.id !== spec.id);
    await writeFile(configFile, nodeConfig(dir, spec, peers, keyFile, dataDir, auditFile));
    nodes.push(
      new ProcessNode(
        spec.id,
        `http://127.0.0.1:${spec.port}`,
        spec.clusterPort,
        dataDir,
        binary,
        configFile,
        path.join(nodeDir, 'server.log'),
      ),
    );
  }
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    const first = nodes[0];
    if (first === undefined) throw new Error('a cluster needs at least one node');
    const init = await baoCall(first.address, 'POST', 'sys/init', {
      body: { recovery_shares: 1, recovery_threshold: 1 },
      timeoutMs: 30000,
    });
    const rootToken = init.body.root_token;
    if (init.status !== 200 || typeof rootToken !== 'string') {
      throw new Error(`bao operator init failed: HTTP ${init.status}`);
    }
    const cluster = clusterOf(nodes, rootToken, binary, dir, stop);
    const deadline = Date.now() + (options.startTimeoutMs ?? 60000);
    const active = await cluster.waitForActive(Math.max(1000, deadline - Date.now()));
    // Joined nodes become voters only after autopilot's stabilization time (10 s default).
    await baoCall(active.address, 'POST', 'sys/storage/raft/autopilot/configuration', {
      token: rootToken,
      body: { server_stabilization_time: '1s' },
    });
    await waitForVoters(cluster, count, deadline);
    const kv = await baoCall(active.address, 'POST', 'sys/mounts/secret', {
      token: rootToken,
      body: { type: 'kv', options: { version: '2' } },
    });
    if (kv.status >= 300) throw new Error(`mounting KV v2 failed: HTTP ${kv.status}`);
    await waitForKvEverywhere(cluster, deadline);
    const health = await baoCall(active.address, 'GET', 'sys/health');
    const version = typeof health.body.version === 'string' ? health.body.version : '';
    return { ...cluster, version };
  } catch (error) {
    const tails = nodes.map((n) => `${n.id}: ${n.tail().split('\n').slice(-3).join(' | ')}`);
    await stop();
    throw new Error(
      `the OpenBao raft cluster did not start: ${(error as Error).message}\n${tails.join('\n')}`,
    );
  }
}

function clusterOf(
  nodes: readonly ProcessNode[],
  rootToken: string,
  binary: string,
  dir: string,
  stop: () => Promise<void>,
): Omit<OpenBaoCluster, 'version'> {
  const activeNode = async () => {
    const statuses = await Promise.all(
      nodes.map(async (n) => (n.running() ? healthStatus(n.address) : 0)),
    );
    return nodes[statuses.indexOf(200)];
  };
  return {
    nodes,
    rootToken,
    binary,
    dir,
    activeNode,
    async waitForActive(timeoutMs = 30000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const active = await activeNode();
        if (active) {
          // Active in sys/health is not yet "takes writes" right after an election.
          const probe = await baoCall(active.address, 'POST', 'sys/policies/acl/zsb-probe', {
            token: rootToken,
            body: { policy: 'path "zsb-probe/*" { capabilities = ["deny"] }' },
          }).catch(() => ({ status: 0 }));
          if (probe.status === 204 || probe.status === 200) return active;
        }
        await sleep(100);
      }
      throw new Error(`no OpenBao node became active within ${timeoutMs} ms`);
    },
    stop,
  };
}

async function waitForVoters(
  cluster: Omit<OpenBaoCluster, 'version'>,
  count: number,
  deadline: number,
): Promise<void> {
  let seen = '';
  while (Date.now() < deadline) {
    const active = await cluster.activeNode();
    if (active) {
      const state = await baoCall(active.address, 'GET', 'sys/storage/raft/autopilot/state', {
        token: cluster.rootToken,
      }).catch(() => undefined);
      const data = (state?.body.data ?? {}) as { servers?: unknown; healthy?: unknown };
      const servers = data.servers;
      const voters =
        typeof servers === 'object' && servers !== null
          ? Object.values(servers as Record<string, { status?: string }>).filter(
              (s) => s.status === 'voter' || s.status === 'leader',
            ).length
          : 0;
      if (voters >= count && data.healthy === true) return;
      seen = `${voters} voters, healthy ${String(data.healthy)}, HTTP ${state?.status}`;
    }
    await sleep(250);
  }
  throw new Error(`the cluster did not reach ${count} healthy voters in time (${seen})`);
}

/** Right after a KV v2 mount, standbys answer 400 "waiting for the primary to upgrade" briefly. */
async function waitForKvEverywhere(
  cluster: Omit<OpenBaoCluster, 'version'>,
  deadline: number,
): Promise<void> {
  for (const node of cluster.nodes) {
    while (true) {
      const read = await baoCall(node.address, 'GET', 'secret/data/zsb-probe', {
        token: cluster.rootToken,
      }).catch(() => ({ status: 0 }));
      if (read.status === 404 || read.status === 200) break;
      if (Date.now() > deadline) throw new Error(`KV v2 not usable on ${node.id} in time`);
      await sleep(100);
    }
  }
}

/** The cluster as the playground uses a dev server (`zsb dev --ha`), with every address. */
export interface DevOpenBaoCluster extends DevOpenBao {
  readonly addresses: readonly string[];
  readonly cluster: OpenBaoCluster;
}

export function isDevCluster(bao: DevOpenBao): bao is DevOpenBaoCluster {
  return 'cluster' in bao && 'addresses' in bao;
}

export async function startDevOpenBaoCluster(
  options: ClusterOptions = {},
): Promise<DevOpenBaoCluster> {
  const cluster = await startOpenBaoCluster(options);
  const first = cluster.nodes[0];
  return {
    address: first?.address ?? '',
    addresses: cluster.nodes.map((n) => n.address),
    rootToken: cluster.rootToken,
    version: cluster.version,
    binary: cluster.binary,
    cluster,
    stop: () => cluster.stop(),
  };
}
