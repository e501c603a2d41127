/**
 * The cluster suite's fixture: a real three-node OpenBao raft cluster (src/dev/openbao-cluster.ts)
 * with the broker's set-up applied (a KV secret, a database mount on the run's PostgreSQL,
 * the compiled broker and build policies and token role), and broker instances given all
 * three addresses. Fails loudly when the cluster cannot start; nothing here is faked.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import {
  baoCall,
  type OpenBaoCluster,
  startOpenBaoCluster,
} from '../../src/dev/openbao-cluster.js';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { createLogger, type RunningBroker, startBroker } from '../../src/main.js';
import { createOpenBaoClient } from '../../src/openbao/client.js';
import { LogCapture } from './app.js';
import { installBrokerSetup } from './broker-setup.js';
import { canaryValue, registerCanary, registerSecretData } from './canary.js';
import { postgresConnectionConfig, READ_ONLY_DB_ROLE } from './dynamic-setup.js';

export { baoCall } from '../../src/dev/openbao-cluster.js';

export const AUDIENCE = 'https://secrets.example.org';

export interface ClusterFixture {
  readonly cluster: OpenBaoCluster;
  readonly addresses: readonly string[];
  readonly issuer: ZuulIssuer;
  readonly logs: LogCapture;
  /** The KV secret `clouds`; its password is a canary. */
  readonly secret: { readonly username: string; readonly password: string };
  readonly kvPath: string;
  /** The suite's KV prefix: `late` reads `secret/<prefix>/late`. */
  readonly prefix: string;
  readonly dbMount: string;
  readonly statePrefix: string;
  readonly dir: string;
  /** A root client that is cluster-aware (writes to the active node). */
  readonly admin: ReturnType<typeof createOpenBaoClient>;
  /** Another broker instance, optionally with addresses in another order. */
  startBroker(options?: { addresses?: readonly string[] }): Promise<RunningBroker>;
  /** A `zsb` configuration file (its own broker token) for these addresses, in this order. */
  writeConfig(file: string, addresses: readonly string[]): Promise<string>;
  close(): Promise<void>;
}

async function ok(
  promise: Promise<{ status: number; body: Record<string, unknown> }>,
  what: string,
): Promise<Record<string, unknown>> {
  const res = await promise;
  if (res.status >= 300) throw new Error(`${what}: HTTP ${res.status}`);
  return res.body;
}

export interface ClusterFixtureOptions {
  readonly prepareDataDir?: (nodeId: string, dataDir: string) => Promise<void>;
  readonly auditFile?: (nodeId: string, nodeDir: string) => Promise<string | undefined>;
  /** Extra broker configuration merged over the defaults (top-level keys replaced). */
  readonly brokerConfig?: Record<string, unknown>;
}

export async function startClusterFixture(
  suite: string,
  options: ClusterFixtureOptions = {},
): Promise<ClusterFixture> {
  const started = Date.now();
  const cluster = await startOpenBaoCluster({
    ...(options.prepareDataDir ? { prepareDataDir: options.prepareDataDir } : {}),
    ...(options.auditFile ? { auditFile: options.auditFile } : {}),
  });
  registerCanary(cluster.rootToken);
  const addresses = cluster.nodes.map((n) => n.address);
  process.stdout.write(
    `[cluster ${suite}] OpenBao ${cluster.version}, 3 raft voters up in ${Date.now() - started} ms\n`,
  );
  const root = { token: cluster.rootToken };
  const admin = createOpenBaoClient({
    addresses,
    timeoutMs: 10000,
    maxConnections: 8,
    token: () => cluster.rootToken,
  });
  const active = await cluster.waitForActive();
  const prefix = `cl-${suite}-${randomBytes(3).toString('hex')}`;
  const secret = { username: 'ci', password: canaryValue(suite) };
  registerSecretData(secret);
  await admin.kvWrite('secret', `${prefix}/clouds`, secret);
  await admin.kvWrite('secret', `${prefix}/api-key`, { client: 'ci', apiKey: 'first' });

  const dbMount = `db-${prefix}`;
  await ok(
    baoCall(active.address, 'POST', `sys/mounts/${dbMount}`, {
      ...root,
      body: { type: 'database' },
    }),
    'mount db',
  );
  await ok(
    baoCall(active.address, 'POST', `${dbMount}/config/pg`, {
      ...root,
      timeoutMs: 20000,
      body: postgresConnectionConfig(),
    }),
    'db config',
  );
  await ok(
    baoCall(active.address, 'POST', `${dbMount}/roles/ro`, {
      ...root,
      body: READ_ONLY_DB_ROLE,
    }),
    'db role',
  );
  const policyYaml = `secrets:
  clouds:
    kv: { mount: secret, path: ${prefix}/clouds }
  late:
    kv: { mount: secret, path: ${prefix}/late }
  api-key:
    kv: { mount: secret, path: ${prefix}/api-key }
  status-page-db:
    database: { mount: ${dbMount}, role: ro }
grants:
  - name: cluster
    match: { tenant: scs }
    allow: [clouds, late, api-key, status-page-db]
    ttl: 15m
rotations:
  - secret: api-key
    every: 1d
    generate: { key: apiKey, kind: token, length: 32, format: hex }
`;
  // The broker's ACL exactly as compiled: it includes what cluster readiness reads (ADR 0012).
  const { names, brokerPolicy } = await installBrokerSetup(
    admin,
    'cluster.yaml',
    policyYaml,
    prefix,
  );

  const dir = await mkdtemp(path.join(tmpdir(), `zsb-cluster-${suite}-`));
  await mkdir(path.join(dir, 'policies'));
  await writeFile(path.join(dir, 'policies', 'cluster.yaml'), policyYaml);
  const issuer = await ZuulIssuer.start({ modulusLength: 2048 });
  const logs = new LogCapture();
  const brokers: RunningBroker[] = [];

  let tokens = 0;
  /** A fresh broker token (orphan, the compiled broker policy) in a file of its own. */
  const newTokenFile = async (): Promise<string> => {
    const token = await admin.createToken({
      policies: [brokerPolicy],
      ttlSeconds: 3600,
      orphan: true,
    });
    registerCanary(token.token);
    const tokenFile = path.join(dir, `token-${tokens++}`);
    await writeFile(tokenFile, token.token, { mode: 0o600 });
    return tokenFile;
  };
  /** A broker configuration document with its own broker token. */
  const configDoc = async (brokerAddresses: readonly string[]) => {
    const tokenFile = await newTokenFile();
    return {
      listen: { host: '127.0.0.1', port: 0 },
      issuers: [{ issuer: issuer.issuer, audience: AUDIENCE }],
      openbao: {
        addresses: brokerAddresses,
        auth: { method: 'token', tokenFile },
        statePrefix: names.statePrefix,
        buildTokenRole: names.buildTokenRole,
        buildPolicy: names.buildPolicy,
        timeoutMs: 5000,
      },
      policies: path.join(dir, 'policies'),
      watchPolicies: false,
      log: { level: 'warn' },
    };
  };

  const startOne = async (brokerOptions: { addresses?: readonly string[] } = {}) => {
    const tokenFile = await newTokenFile();
    const broker = await startBroker(
      parseConfig({
        listen: { host: '127.0.0.1', port: 0 },
        issuers: [{ issuer: issuer.issuer, audience: AUDIENCE }],
        openbao: {
          addresses: brokerOptions.addresses ?? addresses,
          auth: { method: 'token', tokenFile },
          statePrefix: names.statePrefix,
          buildTokenRole: names.buildTokenRole,
          buildPolicy: names.buildPolicy,
          timeoutMs: 5000,
        },
        policies: path.join(dir, 'policies'),
        watchPolicies: false,
        rotation: { enabled: false },
        audit: { file: path.join(dir, `audit-${brokers.length}.jsonl`) },
        limits: {
          perIdentity: { rate: 100000, burst: 100000 },
          global: { rate: 100000, burst: 100000 },
        },
        ...options.brokerConfig,
      }),
      { logger: createLogger('info', logs) },
    );
    brokers.push(broker);
    return broker;
  };

  return {
    cluster,
    addresses,
    issuer,
    logs,
    secret,
    kvPath: `${prefix}/clouds`,
    prefix,
    dbMount,
    statePrefix: names.statePrefix,
    dir,
    admin,
    startBroker: startOne,
    async writeConfig(file, brokerAddresses) {
      const target = path.join(dir, file);
      await writeFile(target, stringify(await configDoc(brokerAddresses)));
      return target;
    },
    async close() {
      for (const b of brokers) await b.close().catch(() => undefined);
      // Drop the database roles this suite's leases created, while a leader is there.
      const leader = await cluster.activeNode();
      if (leader) {
        await baoCall(leader.address, 'POST', `sys/leases/revoke-prefix/${dbMount}/creds`, {
          ...root,
          timeoutMs: 20000,
        }).catch(() => undefined);
      }
      await issuer.close();
      await cluster.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One answer of the broker, with its Retry-After and elapsed time. */
export interface Answer {
  readonly status: number;
  readonly retryAfter: string | null;
  readonly ms: number;
  readonly at: number;
  readonly body: Record<string, unknown>;
}

export async function call(
  url: string,
  method: string,
  route: string,
  token: string,
  body?: unknown,
): Promise<Answer> {
  const at = Date.now();
  const res = await fetch(`${url}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    signal: AbortSignal.timeout(30000),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    ms: Date.now() - at,
    at,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

/** The database leases OpenBao still holds for the fixture's role (through the active node). */
export async function liveLeases(fixture: ClusterFixture): Promise<string[]> {
  const leader = await fixture.cluster.waitForActive();
  const res = await baoCall(
    leader.address,
    'LIST',
    `sys/leases/lookup/${fixture.dbMount}/creds/ro`,
    {
      token: fixture.cluster.rootToken,
    },
  );
  if (res.status === 404) return [];
  const data = res.body.data as { keys?: string[] } | undefined;
  return data?.keys ?? [];
}

/** A build's ledger as the active node holds it. */
export async function ledgerOf(
  fixture: ClusterFixture,
  build: string,
): Promise<{ epoch?: number; entries: { kind: string; accessor?: string; revoked?: boolean }[] }> {
  const { issuerSegment } = await import('../../src/leases/ledger.js');
  const entry = await fixture.admin.kvRead(
    'secret',
    `${fixture.statePrefix}/builds/by-issuer/${issuerSegment(fixture.issuer.issuer)}/${build}`,
  );
  return (entry?.data as never) ?? { entries: [] };
}

export const newBuild = () => crypto.randomUUID().replaceAll('-', '');

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
