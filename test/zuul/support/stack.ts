/**
 * The real-Zuul stack of the suite, all on 127.0.0.1: ZooKeeper with TLS (a throw-away
 * openssl CA), a database of its own in PostgreSQL, zuul-scheduler, zuul-web and
 * zuul-executor (Zuul 14.3.0 from `npm run setup:zuul`), a real OpenBao dev server and
 * the broker as a real `zsb serve` process. Nothing is faked; a server that cannot start
 * fails the suite with its log tail. `stop()` ends only the process groups it started,
 * drops its database and removes its directory.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { freeLoopbackPort, startDevOpenBao } from '../../../src/dev/openbao-dev-server.js';
import { createOpenBaoClient } from '../../../src/openbao/client.js';
import { installBrokerSetup } from '../../support/broker-setup.js';
import { canaryValue, registerCanary } from '../../support/canary.js';
import { issueCertificate, makeCa } from '../../support/certs.js';
import { ROOT } from '../../support/process.js';
import {
  AUDIENCE,
  brokerPolicy,
  commitFiles,
  commitOnBranch,
  configRepoFiles,
  createKitRepo,
  projectRepoFiles,
  type SuiteValues,
  TENANT,
  tenantConfig,
} from './repos.js';
import {
  killMarked,
  logTail,
  RUN_MARKER,
  type Service,
  serviceEnv,
  startService,
  stopService,
  waitFor,
} from './services.js';

const run = promisify(execFile);

// The real path: bubblewrap mounts the virtualenv's directories by the path Zuul runs from,
// and a symlinked .venv-zuul (a git worktree sharing one) would not resolve inside it.
export const ZUUL_VENV = realpathOr(path.join(ROOT, '.venv-zuul'));

function realpathOr(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}
const PYTHON = path.join(ZUUL_VENV, 'bin', 'python');
const SUPPORT = import.meta.dirname;
const ZK_JARS = [
  'zookeeper.jar',
  'zookeeper-jute.jar',
  // Not on zookeeper.jar's Class-Path in Debian, but needed by the Netty TLS server.
  'netty-codec.jar',
  'netty-resolver.jar',
  'netty-transport-native-unix-common.jar',
  'slf4j-simple.jar',
].map((jar) => `/usr/share/java/${jar}`);

export interface Build {
  readonly uuid: string;
  readonly job_name: string;
  readonly result: string | null;
  readonly pipeline: string;
  readonly start_time: string | null;
  readonly end_time: string | null;
  readonly ref: { readonly project: string; readonly branch?: string | null } | null;
}

export interface AuditEvent {
  readonly event: string;
  readonly outcome: string;
  readonly identity?: {
    readonly project?: string;
    readonly build?: string;
    readonly job?: string;
    readonly buildProject?: string;
    readonly branch?: string;
  };
  readonly reason?: string;
  readonly secrets?: readonly { readonly name: string; readonly kind: string }[];
  readonly revoked?: number;
}

/** One text of the run that must not hold a secret: what it is, and its content. */
export interface Output {
  readonly kind: string;
  readonly text: string;
}

export interface Stack {
  readonly dir: string;
  readonly webUrl: string;
  readonly brokerUrl: string;
  readonly openbaoUrl: string;
  readonly outDir: string;
  readonly reposDir: string;
  readonly services: readonly Service[];
  /** Zuul's REST API (JSON; zuul-web answers unknown paths with 200 HTML, so checked). */
  api(route: string): Promise<unknown>;
  /** Completed builds of `job` that started at or after `since` (epoch ms), oldest first. */
  builds(job: string, since: number): Promise<Build[]>;
  /** Waits for the first completed build of `job` started at or after `since`. */
  nextBuild(job: string, since: number, timeoutMs: number): Promise<Build>;
  audit(): Promise<AuditEvent[]>;
  /** Rotates Zuul's OIDC signing keys with Zuul's own KeyStorage (see zuul_zk_tool.py). */
  rotateSigningKeys(): Promise<void>;
  /** Every log, job output, znode and database row of the run, for the canary checks. */
  outputs(): Promise<Output[]>;
  /** Last lines of every Zuul service log (never a secret: Zuul does not log them). */
  tails(lines?: number): string;
  stop(): Promise<void>;
}

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

function requireInstalled(): void {
  const missing = [
    PYTHON,
    path.join(ZUUL_VENV, 'bin', 'zuul-scheduler'),
    '/usr/bin/bwrap',
    '/usr/bin/java',
    ...ZK_JARS,
  ].filter((file) => !existsSync(file));
  if (missing.length > 0) {
    throw new Error(
      `the real-Zuul suite cannot start: missing ${missing.join(', ')}; run \`npm run setup:zuul\``,
    );
  }
}

interface PgTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
}

/** The machine's PostgreSQL: PG* variables when set, else 127.0.0.1:5432 (trust). */
function pgTarget(): PgTarget {
  return {
    host: process.env.PGHOST || '127.0.0.1',
    port: Number(process.env.PGPORT || 5432),
    user: process.env.PGUSER || 'postgres',
    password: process.env.PGPASSWORD ?? '',
  };
}

async function withPg<T>(
  target: PgTarget,
  database: string,
  fn: (c: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ ...target, database, connectionTimeoutMillis: 10000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function dburi(target: PgTarget, database: string): string {
  const auth = `${encodeURIComponent(target.user)}${target.password ? `:${encodeURIComponent(target.password)}` : ''}`;
  if (target.host.startsWith('/')) {
    return `postgresql://${auth}@/${database}?host=${encodeURIComponent(target.host)}&port=${target.port}`;
  }
  return `postgresql://${auth}@${target.host}:${target.port}/${database}`;
}

async function tlsReady(port: number, certs: { ca: Buffer; cert: Buffer; key: Buffer }) {
  return new Promise<true | undefined>((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...certs, servername: 'localhost' });
    const done = (value: true | undefined) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(3000, () => done(undefined));
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(undefined));
  });
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10000) });
  const type = res.headers.get('content-type') ?? '';
  const body = await res.text();
  if (res.status !== 200 || !type.includes('json')) {
    throw new Error(`GET ${url}: HTTP ${res.status} ${type} (not a JSON answer)`);
  }
  return JSON.parse(body) as unknown;
}

function zuulConf(o: {
  dir: string;
  zkPort: number;
  webPort: number;
  fingerPort: number;
  dburi: string;
  keystorePassword: string;
}): string {
  const d = o.dir;
  return `[zookeeper]
hosts=127.0.0.1:${o.zkPort}
tls_ca=${d}/certs/ca.crt
tls_cert=${d}/certs/zuul.crt
tls_key=${d}/certs/zuul.key
session_timeout=40

[keystore]
password=${o.keystorePassword}

[database]
dburi=${o.dburi}

[scheduler]
tenant_config=${d}/etc/main.yaml
command_socket=${d}/state/scheduler.socket

[web]
listen_address=127.0.0.1
port=${o.webPort}
root=http://127.0.0.1:${o.webPort}/
command_socket=${d}/state/web.socket

[executor]
job_dir=${d}/jobs
state_dir=${d}/state/executor
git_dir=${d}/state/executor-git
command_socket=${d}/state/executor.socket
finger_port=${o.fingerPort}
private_key_file=${d}/ssh/id_ed25519
trusted_rw_paths=${d}/out
# Two cores shared with the suite's other processes: the load governor would hold jobs.
load_multiplier=100
min_avail_mem=1
min_avail_hdd=1

[merger]
git_user_email=zuul@example.org
git_user_name=zuul

[connection local]
driver=git
baseurl=${d}/repos
poll_delay=2
`;
}

export interface StackOptions {
  /** The granted job prints its secret: the canary checks must then fail. */
  readonly plantCanary?: boolean;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  requireInstalled();
  const dir = await mkdtemp(path.join(tmpdir(), 'zsb-zuul-'));
  for (const sub of ['certs', 'zk', 'repos', 'state', 'jobs', 'out', 'etc', 'ssh', 'logs']) {
    await mkdir(path.join(dir, sub), { recursive: true, mode: 0o700 });
  }
  const services: Service[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const logFile = (name: string) => path.join(dir, 'logs', `${name}.log`);
  const start = (name: string, command: string, args: readonly string[], env = serviceEnv()) => {
    const service = startService(name, command, args, {
      cwd: dir,
      env: { ...env, [RUN_MARKER]: dir },
      logFile: logFile(name),
    });
    services.push(service);
    return service;
  };
  const pgt = pgTarget();
  const database = `zsb_zuul_${randomBytes(6).toString('hex')}`;
  let databaseCreated = false;

  const stop = async () => {
    // Zuul first (its executor's jobs call the broker), then what it used.
    const order = ['zuul-executor', 'zuul-web', 'zuul-scheduler', 'broker', 'zookeeper'];
    for (const name of order) {
      const service = services.find((s) => s.name === name);
      if (service) await stopService(service);
    }
    killMarked(dir);
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    if (databaseCreated) {
      await withPg(pgt, 'postgres', (c) =>
        c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`),
      );
    }
    if (process.env.ZSB_ZUUL_KEEP !== '1') await rm(dir, { recursive: true, force: true });
  };

  try {
    const [zkPort, webPort, fingerPort, brokerPort] = [
      await freeLoopbackPort(),
      await freeLoopbackPort(),
      await freeLoopbackPort(),
      await freeLoopbackPort(),
    ];
    const webUrl = `http://127.0.0.1:${webPort}`;
    const brokerUrl = `http://127.0.0.1:${brokerPort}`;

    // --- ZooKeeper with TLS only (Zuul refuses plaintext) ---
    const certDir = path.join(dir, 'certs');
    const ca = await makeCa(certDir, 'ca');
    const ext =
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n';
    const zkCert = await issueCertificate(certDir, ca, 'zookeeper', 'localhost', ext);
    const zuulCert = await issueCertificate(certDir, ca, 'zuul', 'zuul', ext);
    await writeFile(
      path.join(certDir, 'zookeeper.pem'),
      `${await readFile(zkCert.cert, 'utf8')}${await readFile(zkCert.key, 'utf8')}`,
      { mode: 0o600 },
    );
    await writeFile(
      path.join(dir, 'zk', 'zoo.cfg'),
      `tickTime=2000
initLimit=5
syncLimit=2
dataDir=${dir}/zk/data
secureClientPort=${zkPort}
secureClientPortAddress=127.0.0.1
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
ssl.keyStore.location=${certDir}/zookeeper.pem
ssl.keyStore.type=PEM
ssl.trustStore.location=${ca.cert}
ssl.trustStore.type=PEM
admin.enableServer=false
4lw.commands.whitelist=
`,
    );
    const zookeeper = start('zookeeper', '/usr/bin/java', [
      '-Xmx256m',
      '-Dzookeeper.jmx.log4j.disable=true',
      '-cp',
      ZK_JARS.join(':'),
      'org.apache.zookeeper.server.quorum.QuorumPeerMain',
      path.join(dir, 'zk', 'zoo.cfg'),
    ]);
    const zkCerts = {
      ca: await readFile(ca.cert),
      cert: await readFile(zuulCert.cert),
      key: await readFile(zuulCert.key),
    };
    await waitFor('ZooKeeper to accept TLS connections', () => tlsReady(zkPort, zkCerts), {
      timeoutMs: 60000,
      services: [zookeeper],
    });

    // --- a database of its own ---
    await withPg(pgt, 'postgres', (c) => c.query(`CREATE DATABASE "${database}"`)).catch(
      (error: unknown) => {
        throw new Error(
          `PostgreSQL at ${pgt.host}:${pgt.port} as ${pgt.user} (PGHOST, PGPORT, PGUSER, ` +
            `PGPASSWORD): cannot create the suite's database: ${error instanceof Error ? error.message : String(error)}`,
        );
      },
    );
    databaseCreated = true;

    // --- OpenBao dev server and its seed ---
    const bao = await startDevOpenBao();
    cleanups.push(() => bao.stop());
    registerCanary(bao.rootToken);
    const admin = createOpenBaoClient({
      addresses: [bao.address],
      timeoutMs: 10000,
      maxConnections: 4,
      token: () => bao.rootToken,
    });
    const prefix = `zuul-e2e-${randomBytes(4).toString('hex')}`;
    const values = {
      granted: canaryValue('zuul-granted'),
      projA: canaryValue('zuul-proj-a'),
      deployKey: canaryValue('zuul-deploy-key'),
      dbPassword: canaryValue('zuul-db-password'),
      bound: canaryValue('zuul-bound'),
    };
    await admin.kvWrite('secret', `${prefix}/granted`, { value: values.granted });
    await admin.kvWrite('secret', `${prefix}/proj-a`, { value: values.projA });
    await admin.kvWrite('secret', `${prefix}/bound`, { value: values.bound });
    await admin.kvWrite('secret', `${prefix}/deploy-key`, { key: values.deployKey });
    await admin.kvWrite('secret', `${prefix}/status-page-db`, {
      username: 'status-page',
      password: values.dbPassword,
    });
    const lookupPolicy = `${prefix}-lookup`;
    await admin.putAclPolicy(
      lookupPolicy,
      `path "secret/data/${prefix}/none" { capabilities = ["read"] }\n`,
    );
    const policyText = brokerPolicy(prefix, lookupPolicy);
    const { names } = await installBrokerSetup(admin, 'zuul-e2e.yaml', policyText, prefix);
    const brokerToken = await admin.createToken({
      policies: [`broker-${prefix}`],
      ttlSeconds: 3600,
      orphan: true,
    });
    registerCanary(brokerToken.token);

    // --- the repositories Zuul loads ---
    const outDir = path.join(dir, 'out');
    const suite: SuiteValues = {
      brokerUrl,
      webUrl,
      openbaoUrl: bao.address,
      outDir,
      sha256: {
        granted: sha256(values.granted),
        projA: sha256(values.projA),
        dbPassword: sha256(values.dbPassword),
        bound: sha256(values.bound),
      },
      plantCanary: options.plantCanary === true,
    };
    const reposDir = path.join(dir, 'repos');
    await commitFiles(path.join(reposDir, 'zuul-config'), configRepoFiles(suite), 'config');
    await createKitRepo(
      path.join(reposDir, 'kit'),
      path.join(ROOT, 'zuul'),
      suite.sha256.dbPassword,
    );
    await commitFiles(
      path.join(reposDir, 'proj-a'),
      projectRepoFiles('proj-a', 'proj-a-secret', suite.sha256.projA, suite),
      'proj-a',
    );
    // No configuration of their own: zuul-config runs zsb-bound for them (any branch).
    for (const name of ['app', 'other']) {
      await commitFiles(path.join(reposDir, name), { 'README.md': `${name}\n` }, name);
    }
    for (const [name, branch] of [
      ['app', 'feature'],
      ['app', 'main'],
      ['other', 'main'],
    ] as const) {
      await commitOnBranch(
        path.join(reposDir, name),
        branch,
        { 'BRANCH.txt': `${branch}\n` },
        branch,
      );
    }
    // proj-b asks for proj-a's secret with its own identity: refused.
    await commitFiles(
      path.join(reposDir, 'proj-b'),
      projectRepoFiles('proj-b', 'proj-a-secret', suite.sha256.projA, suite),
      'proj-b',
    );

    // --- Zuul's configuration ---
    const keystorePassword = randomBytes(24).toString('hex');
    registerCanary(keystorePassword);
    const conf = path.join(dir, 'etc', 'zuul.conf');
    await writeFile(
      conf,
      zuulConf({ dir, zkPort, webPort, fingerPort, dburi: dburi(pgt, database), keystorePassword }),
      { mode: 0o600 },
    );
    await writeFile(path.join(dir, 'etc', 'main.yaml'), tenantConfig());
    await run('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-f',
      path.join(dir, 'ssh', 'id_ed25519'),
    ]);
    const zuulEnv = serviceEnv({ HOME: path.join(dir, 'state') });
    const bin = (name: string) => path.join(ZUUL_VENV, 'bin', name);

    const scheduler = start(
      'zuul-scheduler',
      bin('zuul-scheduler'),
      ['-f', '-d', '-c', conf],
      zuulEnv,
    );
    const web = start('zuul-web', bin('zuul-web'), ['-f', '-d', '-c', conf], zuulEnv);
    // The executor is also the merger: the scheduler needs it to read the tenant's
    // configuration. Builds it starts before the broker is ready are not looked at: the
    // cases only take builds that started after the stack was up.
    const executor = start(
      'zuul-executor',
      PYTHON,
      [path.join(SUPPORT, 'zuul_executor_loopback.py'), '-f', '-d', '--keep-jobdir', '-c', conf],
      zuulEnv,
    );
    const zuulServices = [zookeeper, scheduler, web, executor];
    await waitFor(
      'the executor to register (zuul-web /api/components)',
      async () => {
        const components = (await getJson(`${webUrl}/api/components`)) as Record<
          string,
          { state?: string }[]
        >;
        return components.executor?.some((e) => e.state === 'running') ? true : undefined;
      },
      { timeoutMs: 120000, services: zuulServices, intervalMs: 1000 },
    );
    await waitFor(
      `tenant ${TENANT} to load (zuul-web /api/tenant/${TENANT}/projects)`,
      async () => {
        const projects = (await getJson(`${webUrl}/api/tenant/${TENANT}/projects`)) as unknown[];
        return Array.isArray(projects) && projects.length >= 6 ? projects : undefined;
      },
      { timeoutMs: 120000, services: zuulServices, intervalMs: 1000 },
    );
    await waitFor(
      "Zuul's OIDC key set and discovery document",
      async () => {
        const jwks = (await getJson(`${webUrl}/oidc/jwks`)) as { keys?: unknown[] };
        const discovery = (await getJson(`${webUrl}/.well-known/openid-configuration`)) as {
          jwks_uri?: string;
        };
        return (jwks.keys?.length ?? 0) > 0 && discovery.jwks_uri ? true : undefined;
      },
      { timeoutMs: 30000, services: zuulServices },
    );

    // --- the broker: default key-set settings, only issuer and audience ---
    const brokerDir = path.join(dir, 'broker');
    const policiesDir = path.join(brokerDir, 'policies');
    await mkdir(policiesDir, { recursive: true, mode: 0o700 });
    await writeFile(path.join(policiesDir, 'zuul-e2e.yaml'), policyText);
    await writeFile(path.join(brokerDir, 'bao-token'), brokerToken.token, { mode: 0o600 });
    const auditFile = path.join(brokerDir, 'audit.jsonl');
    await writeFile(
      path.join(brokerDir, 'config.yaml'),
      `listen: { host: 127.0.0.1, port: ${brokerPort} }
issuers:
  - issuer: ${webUrl}
    audience: ${AUDIENCE}
    buildBinding: {}
openbao:
  address: ${bao.address}
  auth: { method: token, tokenFile: ${brokerDir}/bao-token }
  statePrefix: ${names.statePrefix}
  buildTokenRole: ${names.buildTokenRole}
  buildPolicy: ${names.buildPolicy}
policies: ${policiesDir}
audit: { file: ${auditFile} }
log: { level: info }
`,
    );
    const tsx = pathToFileURL(path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
    const broker = start(
      'broker',
      process.execPath,
      [
        '--import',
        tsx,
        path.join(ROOT, 'src', 'cli', 'index.ts'),
        'serve',
        '--config',
        path.join(brokerDir, 'config.yaml'),
      ],
      serviceEnv({ HOME: brokerDir }),
    );
    await waitFor(
      'the broker to be ready (/readyz 200: OpenBao, policies, the Zuul issuer, audit)',
      async () => {
        const res = await fetch(`${brokerUrl}/readyz`, { signal: AbortSignal.timeout(5000) });
        return res.status === 200 ? true : undefined;
      },
      { timeoutMs: 60000, services: [broker] },
    );
    const all = [...zuulServices, broker];

    const api = (route: string) => getJson(`${webUrl}/api/tenant/${TENANT}${route}`);
    const builds = async (job: string, since: number): Promise<Build[]> => {
      const list = (await api(
        `/builds?job_name=${encodeURIComponent(job)}&complete=true&limit=100`,
      )) as Build[];
      return list
        .filter((b) => b.result !== null && b.start_time !== null)
        .filter((b) => Date.parse(`${b.start_time}Z`) >= Math.floor(since / 1000) * 1000)
        .sort((a, b) => String(a.start_time).localeCompare(String(b.start_time)));
    };
    const tails = (lines = 30) =>
      services
        .map((s) => `--- ${s.name} (${s.logFile}) ---\n${logTail(s.logFile, lines)}`)
        .join('\n');

    return {
      dir,
      webUrl,
      brokerUrl,
      openbaoUrl: bao.address,
      outDir,
      reposDir,
      services,
      api,
      builds,
      async nextBuild(job, since, timeoutMs) {
        return waitFor(
          `a completed build of ${job} started after ${new Date(since).toISOString()}`,
          async () => (await builds(job, since))[0],
          { timeoutMs, services: all, intervalMs: 2000 },
        ).catch((error: unknown) => {
          throw new Error(
            `${error instanceof Error ? error.message : String(error)}\n${tails(15)}`,
          );
        });
      },
      async audit() {
        const text = await readFile(auditFile, 'utf8').catch(() => '');
        return text
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as AuditEvent);
      },
      async rotateSigningKeys() {
        await run(PYTHON, [path.join(SUPPORT, 'zuul_zk_tool.py'), 'rotate-oidc', conf], {
          env: zuulEnv,
          timeout: 60000,
        });
      },
      async outputs() {
        const found: Output[] = [];
        for (const s of services) {
          found.push({ kind: `${s.name} log`, text: await readFile(s.logFile, 'utf8') });
        }
        found.push({ kind: 'broker audit log', text: await readFile(auditFile, 'utf8') });
        for (const build of await readdir(path.join(dir, 'jobs'))) {
          for (const name of ['job-output.txt', 'job-output.json']) {
            const file = path.join(dir, 'jobs', build, 'work', 'logs', name);
            if (existsSync(file)) {
              found.push({ kind: `${name} of build ${build}`, text: await readFile(file, 'utf8') });
            }
          }
        }
        const zk = await run(PYTHON, [path.join(SUPPORT, 'zuul_zk_tool.py'), 'dump', conf], {
          env: zuulEnv,
          timeout: 120000,
          maxBuffer: 512 * 1024 * 1024,
        });
        found.push({ kind: 'ZooKeeper znodes', text: zk.stdout });
        found.push({ kind: 'Zuul database rows', text: await dumpDatabase(pgt, database) });
        return found;
      },
      tails,
      stop,
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await stop().catch(() => undefined);
    throw new Error(`the real-Zuul stack did not start: ${message}`);
  }
}

/** Every row of every table of Zuul's database, one JSON line per row. */
async function dumpDatabase(target: PgTarget, database: string): Promise<string> {
  return withPg(target, database, async (c) => {
    const tables = await c.query<{ s: string; t: string }>(
      `select table_schema as s, table_name as t from information_schema.tables
       where table_schema not in ('pg_catalog', 'information_schema') and table_type = 'BASE TABLE'`,
    );
    if (tables.rows.length === 0) throw new Error(`database ${database} has no tables`);
    const lines: string[] = [];
    for (const { s, t } of tables.rows) {
      const rows = await c.query<{ row: string }>(
        `select row_to_json(x)::text as row from "${s}"."${t}" x`,
      );
      for (const r of rows.rows) lines.push(`${s}.${t}: ${r.row}`);
    }
    return lines.join('\n');
  });
}
