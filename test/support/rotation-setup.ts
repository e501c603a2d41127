/**
 * A rotation fixture against the run's real OpenBao and PostgreSQL: PostgreSQL logins
 * (one single-user, two alternating), their KV secrets, a policy directory declaring the
 * rotations, a broker token carrying exactly the ACL policy `zsb policy compile` makes,
 * and a configuration file for `zsb rotate` processes. Everything carries the suite's
 * prefix, and `cleanup` drops the logins.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { stringify } from 'yaml';
import { compileOpenBaoSetup } from '../../src/policy/compile.js';
import { formatProblem, parsePolicyFiles } from '../../src/policy/load.js';
import { stateKey } from '../../src/rotation/state.js';
import { exitOf, runZsb, spawnZsb, waitForOutput } from './process.js';
import { baoRequest, realOpenBao } from './real-openbao.js';

export function pgServer() {
  return {
    host: inject('pgHost'),
    port: inject('pgPort'),
    user: inject('pgUser'),
    password: inject('pgPassword'),
  };
}

export async function pgAdminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ ...pgServer(), database: 'postgres' });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Why this login fails now, or undefined when it logs in. */
export async function loginProblem(user: string, password: string): Promise<string | undefined> {
  const { host, port } = pgServer();
  const client = new pg.Client({
    host,
    port,
    user,
    password,
    database: 'postgres',
    connectionTimeoutMillis: 5000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code ?? 'error';
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface RotationFixture {
  readonly prefix: string;
  readonly dir: string;
  readonly configFile: string;
  readonly users: { readonly single: string; readonly a: string; readonly b: string };
  /** KV paths under `secret/`. */
  readonly paths: Readonly<Record<'admin' | 'single' | 'alt' | 'generated', string>>;
  kv(name: 'admin' | 'single' | 'alt' | 'generated'): Promise<{
    data: Record<string, unknown>;
    version: number;
  }>;
  /** The rotation's state record (lock, run in progress, last outcome). */
  state(rotation: string): Promise<Record<string, unknown> | undefined>;
  cleanup(): Promise<void>;
}

const password = () => randomBytes(12).toString('base64url');

export async function setUpRotation(
  prefix: string,
  options: { extraConfig?: Record<string, unknown>; rotations?: string } = {},
): Promise<RotationFixture> {
  const bao = realOpenBao();
  const server = pgServer();
  const ident = prefix.replace(/[^a-z0-9]/g, '_');
  const users = { single: `${ident}_single`, a: `${ident}_a`, b: `${ident}_b` };
  const initial = { single: password(), a: password(), b: password() };
  for (const [key, user] of Object.entries(users)) {
    await pgAdminQuery(
      `CREATE ROLE "${user}" WITH LOGIN PASSWORD '${initial[key as keyof typeof initial]}'`,
    );
  }
  const paths = {
    admin: `${prefix}/pg-admin`,
    single: `${prefix}/app-db`,
    alt: `${prefix}/app-db-alt`,
    generated: `${prefix}/api-key`,
  };
  await bao.admin.kvWrite('secret', paths.admin, {
    host: server.host,
    port: String(server.port),
    database: 'postgres',
    username: server.user,
    password: server.password,
  });
  await bao.admin.kvWrite('secret', paths.single, {
    username: users.single,
    password: initial.single,
  });
  await bao.admin.kvWrite('secret', paths.alt, { username: users.a, password: initial.a });
  await bao.admin.kvWrite('secret', paths.generated, { client: 'ci', apiKey: 'first' });

  const policyYaml = [
    'secrets:',
    `  pg-admin: { kv: { mount: secret, path: ${paths.admin} } }`,
    `  app-db: { kv: { mount: secret, path: ${paths.single} } }`,
    `  app-db-alt: { kv: { mount: secret, path: ${paths.alt} } }`,
    `  api-key: { kv: { mount: secret, path: ${paths.generated} } }`,
    'rotations:',
    options.rotations ??
      [
        '  - secret: app-db',
        '    every: 1d',
        '    target: { postgres: { admin: pg-admin } }',
        '  - secret: app-db-alt',
        '    every: 1d',
        `    target: { postgres: { admin: pg-admin, users: [${users.a}, ${users.b}] } }`,
        '  - secret: api-key',
        '    every: 1d',
        '    generate: { key: apiKey, kind: token, length: 32, format: hex }',
      ].join('\n'),
    '',
  ].join('\n');
  const { dir, configFile, state } = await rotationBroker(prefix, policyYaml, options.extraConfig);

  return {
    prefix,
    dir,
    configFile,
    users,
    paths,
    async kv(name) {
      const entry = await bao.admin.kvRead('secret', paths[name]);
      if (entry === null) throw new Error(`no secret ${paths[name]}`);
      return { data: { ...entry.data }, version: entry.version };
    },
    state,
    async cleanup() {
      for (const user of Object.values(users)) {
        await pgAdminQuery(`DROP ROLE IF EXISTS "${user}"`).catch(() => undefined);
      }
      await baoRequest(bao.address, 'DELETE', `secret/metadata/${prefix}`, {
        token: bao.rootToken,
      }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface RotationBroker {
  readonly dir: string;
  readonly configFile: string;
  /** The rotation's state record (lock, run in progress, last outcome). */
  state(rotation: string): Promise<Record<string, unknown> | undefined>;
}

/**
 * A policy directory holding `policyYaml`, a broker token with exactly the ACL policy
 * `zsb policy compile` makes for it, and a configuration file for `zsb rotate` processes
 * (lock TTL 1 s, so a killed holder's lock expires quickly). The caller removes `dir`.
 */
export async function rotationBroker(
  prefix: string,
  policyYaml: string,
  extraConfig: Record<string, unknown> = {},
): Promise<RotationBroker> {
  const bao = realOpenBao();
  const dir = await mkdtemp(path.join(tmpdir(), 'zsb-rot-'));
  await mkdir(path.join(dir, 'policies'));
  await writeFile(path.join(dir, 'policies', 'rotations.yaml'), policyYaml);
  const parsed = parsePolicyFiles([{ name: 'rotations.yaml', text: policyYaml }], {
    maxTtlSeconds: 3600,
  });
  if (!parsed.ok) throw new Error(parsed.problems.map(formatProblem).join('\n'));
  const statePrefix = `${prefix}-state`;
  const setup = compileOpenBaoSetup(parsed.set, {
    stateMount: 'secret',
    statePrefix,
    buildTokenRole: `${prefix}-build`,
    buildPolicy: `${prefix}-build`,
    maxTtlSeconds: 3600,
  });
  const brokerPolicy = `${prefix}-broker`;
  await bao.admin.putAclPolicy(brokerPolicy, setup.brokerPolicy);
  const token = await bao.admin.createToken({
    policies: [brokerPolicy],
    ttlSeconds: 3600,
    orphan: true,
  });
  await writeFile(path.join(dir, 'token'), token.token, { mode: 0o600 });
  const configFile = path.join(dir, 'zsb.yaml');
  await writeFile(
    configFile,
    stringify({
      listen: { host: '127.0.0.1', port: 0 },
      issuers: [{ issuer: 'https://zuul.example.org', audience: 'https://secrets.example.org' }],
      openbao: {
        address: bao.address,
        auth: { method: 'token', tokenFile: path.join(dir, 'token') },
        statePrefix,
      },
      policies: path.join(dir, 'policies'),
      watchPolicies: false,
      rotation: { lockTtlSeconds: 1 },
      log: { level: 'warn' },
      ...extraConfig,
    }),
  );

  return {
    dir,
    configFile,
    async state(rotation) {
      const entry = await bao.admin.kvRead(
        'secret',
        `${statePrefix}/rotations/${stateKey(rotation)}`,
      );
      return entry === null ? undefined : { ...entry.data };
    },
  };
}

/** Where `zsb rotate` processes find their configuration. */
interface RotateSetting {
  readonly configFile: string;
  readonly dir: string;
}

/**
 * Runs `zsb rotate NAME` until it pauses at `boundary` (ZSB_ROTATION_PAUSE_AT), calls
 * `whilePaused`, then SIGKILLs it there and waits for it to exit.
 */
export async function killRotationAt(
  setting: RotateSetting,
  name: string,
  boundary: string,
  whilePaused: () => Promise<void> = async () => {},
): Promise<void> {
  const child = spawnZsb(['rotate', name, '--config', setting.configFile], {
    cwd: setting.dir,
    env: { ZSB_ROTATION_PAUSE_AT: boundary },
  });
  await waitForOutput(child, new RegExp(`paused at ${boundary}`), 30000, 'stderr');
  await whilePaused();
  child.kill('SIGKILL');
  await exitOf(child);
}

/** One rotation's entry of `zsb rotation status --json`. */
export async function rotationStatus(
  setting: RotateSetting,
  name: string,
): Promise<Record<string, unknown> | undefined> {
  const status = await runZsb(['rotation', 'status', '--json', '--config', setting.configFile], {
    cwd: setting.dir,
  });
  if (status.code !== 0) throw new Error(`zsb rotation status failed: ${status.stderr}`);
  return (JSON.parse(status.stdout) as Array<Record<string, unknown>>).find((s) => s.name === name);
}
