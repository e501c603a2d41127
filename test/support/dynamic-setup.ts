/**
 * Sets up real OpenBao secrets engines for the dynamic-secret tests: a database mount
 * talking to this machine's PostgreSQL, a PKI mount with a root CA, an ACL policy for
 * `token` secrets, and the broker's own set-up applied as `zsb policy compile --apply`
 * would. Names carry the suite's prefix so suites never share state.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import pg from 'pg';
import { inject } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { createLogger, type RunningBroker, startBroker } from '../../src/main.js';
import { installBrokerSetup } from './broker-setup.js';
import { baoRequest, realOpenBao } from './real-openbao.js';

/** The run's PostgreSQL (test/support/postgres-global-setup.ts). */
function pgAdmin() {
  return {
    host: inject('pgHost'),
    port: inject('pgPort'),
    user: inject('pgUser'),
    password: inject('pgPassword'),
  };
}

/** `{dbMount}/config/pg`: the database secrets engine's connection to the run's PostgreSQL. */
export function postgresConnectionConfig() {
  const pg = pgAdmin();
  return {
    plugin_name: 'postgresql-database-plugin',
    connection_url: `postgresql://{{username}}:{{password}}@${pg.host}:${pg.port}/postgres?sslmode=disable`,
    username: pg.user,
    password: pg.password,
    allowed_roles: '*',
  };
}

/** `{dbMount}/roles/ro`: a login role valid until its lease ends, dropped when revoked. */
export const READ_ONLY_DB_ROLE = {
  db_name: 'pg',
  creation_statements: [
    `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
  ],
  revocation_statements: ['DROP ROLE IF EXISTS "{{name}}";'],
  default_ttl: '1h',
  max_ttl: '2h',
} as const;

/** Whether these credentials can log in to PostgreSQL now. */
export async function canLogin(username: string, password: string): Promise<boolean> {
  const { host, port } = pgAdmin();
  const client = new pg.Client({
    host,
    port,
    user: username,
    password,
    database: 'postgres',
    connectionTimeoutMillis: 5000,
  });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether a PostgreSQL role of that name exists. */
export async function roleExists(username: string): Promise<boolean> {
  const client = new pg.Client({ ...pgAdmin(), database: 'postgres' });
  await client.connect();
  try {
    const result = await client.query('select 1 from pg_roles where rolname = $1', [username]);
    return (result.rowCount ?? 0) > 0;
  } finally {
    await client.end();
  }
}

async function ok(
  promise: Promise<{ status: number; body: Record<string, unknown> }>,
  what: string,
) {
  const res = await promise;
  if (res.status >= 300) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export interface DynamicFixture {
  readonly prefix: string;
  readonly dbMount: string;
  readonly pkiMount: string;
  readonly brokerPolicy: string;
  readonly buildTokenRole: string;
  readonly buildPolicy: string;
  readonly statePrefix: string;
  readonly e2ePolicy: string;
  /** Policy file text for the suite. */
  readonly policyYaml: string;
  cleanup(): Promise<void>;
}

export async function setUpDynamic(prefix: string, grantTtl: string): Promise<DynamicFixture> {
  const bao = realOpenBao();
  const root = { token: bao.rootToken };
  const dbMount = `db-${prefix}`;
  const pkiMount = `pki-${prefix}`;
  const e2ePolicy = `e2e-${prefix}`;
  await ok(
    baoRequest(bao.address, 'POST', `sys/mounts/${dbMount}`, {
      ...root,
      body: { type: 'database' },
    }),
    'mount db',
  );
  await ok(
    baoRequest(bao.address, 'POST', `${dbMount}/config/pg`, {
      ...root,
      body: postgresConnectionConfig(),
    }),
    'db config',
  );
  await ok(
    baoRequest(bao.address, 'POST', `${dbMount}/roles/ro`, {
      ...root,
      body: READ_ONLY_DB_ROLE,
    }),
    'db role',
  );
  await ok(
    baoRequest(bao.address, 'POST', `sys/mounts/${pkiMount}`, {
      ...root,
      body: { type: 'pki', config: { max_lease_ttl: '24h' } },
    }),
    'mount pki',
  );
  await ok(
    baoRequest(bao.address, 'POST', `${pkiMount}/root/generate/internal`, {
      ...root,
      body: { common_name: 'zsb test CA', ttl: '24h' },
    }),
    'pki root',
  );
  await ok(
    baoRequest(bao.address, 'POST', `${pkiMount}/roles/zuul-ci`, {
      ...root,
      body: {
        allowed_domains: 'ci.example.org',
        allow_subdomains: true,
        max_ttl: '2h',
        key_type: 'ec',
        key_bits: 256,
      },
    }),
    'pki role',
  );
  await bao.admin.putAclPolicy(
    e2ePolicy,
    `path "secret/data/${prefix}/e2e" { capabilities = ["read"] }\n`,
  );
  await bao.admin.kvWrite('secret', `${prefix}/e2e`, { marker: 'e2e' });

  const policyYaml = `
secrets:
  status-page-db:
    database: { mount: ${dbMount}, role: ro }
  ci-cert:
    pki: { mount: ${pkiMount}, role: zuul-ci, commonName: "{build}.ci.example.org" }
  bao-token:
    token: { policies: [${e2ePolicy}] }
grants:
  - name: dynamic
    match: { tenant: scs, pipeline: periodic-daily }
    allow: [status-page-db, ci-cert, bao-token]
    ttl: ${grantTtl}
`;
  const { names, brokerPolicy } = await installBrokerSetup(
    bao.admin,
    'dynamic.yaml',
    policyYaml,
    prefix,
  );

  return {
    prefix,
    dbMount,
    pkiMount,
    brokerPolicy,
    buildTokenRole: names.buildTokenRole,
    buildPolicy: names.buildPolicy,
    statePrefix: names.statePrefix,
    e2ePolicy,
    policyYaml,
    async cleanup() {
      // Drop every database role this suite's leases created, whatever the tests left.
      await baoRequest(bao.address, 'POST', `sys/leases/revoke-prefix/${dbMount}/creds`, root);
    },
  };
}

export interface DynamicBroker {
  readonly fixture: DynamicFixture;
  readonly broker: RunningBroker;
  readonly issuer: ZuulIssuer;
  /** Holds the broker's token file and the policy files. */
  readonly dir: string;
  close(): Promise<void>;
}

/**
 * A broker serving the fixture's dynamic secrets (plus `extraPolicies` files), with its
 * own OpenBao token carrying the compiled broker policy and `extraAclPolicies`.
 */
export async function startDynamicBroker(options: {
  readonly prefix: string;
  readonly grantTtl: string;
  readonly logs: Writable;
  readonly extraPolicies?: Readonly<Record<string, string>>;
  readonly extraAclPolicies?: readonly string[];
}): Promise<DynamicBroker> {
  const fixture = await setUpDynamic(options.prefix, options.grantTtl);
  const issuer = await ZuulIssuer.start({ modulusLength: 2048 });
  const started = await startBrokerFor(fixture, { ...options, issuers: [issuer] });
  return {
    fixture,
    broker: started.broker,
    issuer,
    dir: started.dir,
    async close() {
      await started.close();
      await issuer.close();
      await fixture.cleanup();
    },
  };
}

/**
 * One more broker instance on an existing fixture (same OpenBao state, same build
 * ledgers), trusting `issuers`: for tests with several brokers or several Zuuls.
 */
export async function startBrokerFor(
  fixture: DynamicFixture,
  options: {
    readonly issuers: readonly ZuulIssuer[];
    readonly logs: Writable;
    readonly extraPolicies?: Readonly<Record<string, string>>;
    readonly extraAclPolicies?: readonly string[];
  },
): Promise<{ readonly broker: RunningBroker; readonly dir: string; close(): Promise<void> }> {
  const bao = realOpenBao();
  const dir = await mkdtemp(path.join(tmpdir(), 'zsb-dyn-'));
  await writeFile(path.join(dir, 'dynamic.yaml'), fixture.policyYaml);
  for (const [name, text] of Object.entries(options.extraPolicies ?? {})) {
    await writeFile(path.join(dir, name), text);
  }
  const token = await bao.admin.createToken({
    policies: [fixture.brokerPolicy, ...(options.extraAclPolicies ?? [])],
    ttlSeconds: 3600,
    orphan: true,
  });
  await writeFile(path.join(dir, 'token'), token.token, { mode: 0o600 });
  const broker = await startBroker(
    parseConfig({
      listen: { host: '127.0.0.1', port: 0 },
      issuers: options.issuers.map((i) => ({
        issuer: i.issuer,
        audience: 'https://secrets.example.org',
      })),
      openbao: {
        address: bao.address,
        auth: { method: 'token', tokenFile: path.join(dir, 'token') },
        statePrefix: fixture.statePrefix,
        buildTokenRole: fixture.buildTokenRole,
        buildPolicy: fixture.buildPolicy,
      },
      policies: dir,
    }),
    { logger: createLogger('info', options.logs) },
  );
  return {
    broker,
    dir,
    async close() {
      await broker.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
