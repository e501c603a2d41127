/**
 * Rotations run by the broker's own scheduler, against real OpenBao and PostgreSQL: an
 * OpenBao database static role, and the broker's own AppRole secret-id. The broker keeps
 * working through its own rotation: its token expires within seconds, so its next login
 * must use the new secret-id.
 */
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger, type RunningBroker, startBroker } from '../../src/main.js';
import { compileOpenBaoSetup } from '../../src/policy/compile.js';
import { parsePolicyFiles } from '../../src/policy/load.js';
import { baoRequest, realOpenBao, uniquePrefix } from '../support/real-openbao.js';
import {
  loginProblem,
  pgAdminQuery,
  pgServer,
  type RotationFixture,
  setUpRotation,
} from '../support/rotation-setup.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

async function ok(res: Promise<{ status: number; body: Record<string, unknown> }>, what: string) {
  const r = await res;
  if (r.status >= 300) throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

describe('rotations inside the broker', () => {
  const bao = realOpenBao();
  const root = { token: bao.rootToken };
  let fx: RotationFixture;
  let broker: RunningBroker;
  let staticUser: string;
  let dbMount: string;
  let approleMount: string;
  let roleId: string;
  let firstSecretId: string;
  const logs = new PassThrough();
  let logText = '';
  logs.on('data', (c: Buffer) => {
    logText += c.toString();
  });

  beforeAll(async () => {
    const prefix = uniquePrefix('rotb');
    dbMount = `db-${prefix}`;
    approleMount = `approle-${prefix}`;
    staticUser = `${prefix.replace(/[^a-z0-9]/g, '_')}_static`;
    await pgAdminQuery(`CREATE ROLE "${staticUser}" WITH LOGIN PASSWORD 'initial-static'`);
    const pgs = pgServer();
    await ok(
      baoRequest(bao.address, 'POST', `sys/mounts/${dbMount}`, {
        ...root,
        body: { type: 'database' },
      }),
      'mount',
    );
    await ok(
      baoRequest(bao.address, 'POST', `${dbMount}/config/pg`, {
        ...root,
        body: {
          plugin_name: 'postgresql-database-plugin',
          connection_url: `postgresql://{{username}}:{{password}}@${pgs.host}:${pgs.port}/postgres?sslmode=disable`,
          username: pgs.user,
          password: pgs.password,
          allowed_roles: '*',
        },
      }),
      'db config',
    );
    await ok(
      baoRequest(bao.address, 'POST', `${dbMount}/static-roles/app`, {
        ...root,
        body: { db_name: 'pg', username: staticUser, rotation_period: '24h' },
      }),
      'static role',
    );
    const rotations = [
      '  - every: 1d',
      `    target: { staticRole: { mount: ${dbMount}, role: app } }`,
    ].join('\n');
    fx = await setUpRotation(prefix, { rotations });

    // The broker's AppRole: its token carries the compiled broker policy plus what its
    // own secret-id rotation needs, and lives only 6 s.
    const policyText = await readFile(path.join(fx.dir, 'policies', 'rotations.yaml'), 'utf8');
    const parsed = parsePolicyFiles([{ name: 'r.yaml', text: policyText }], {
      maxTtlSeconds: 3600,
    });
    if (!parsed.ok) throw new Error('policy');
    const setup = compileOpenBaoSetup(parsed.set, {
      stateMount: 'secret',
      statePrefix: `${prefix}-state`,
      buildTokenRole: 'x',
      buildPolicy: 'x',
      maxTtlSeconds: 3600,
    });
    const own = [
      setup.brokerPolicy,
      `path "auth/${approleMount}/role/zsb/custom-secret-id" { capabilities = ["update"] }`,
      `path "auth/${approleMount}/role/zsb/secret-id/lookup" { capabilities = ["update"] }`,
      `path "auth/${approleMount}/role/zsb/secret-id/destroy" { capabilities = ["update"] }`,
    ].join('\n');
    await bao.admin.putAclPolicy(`${prefix}-approle-broker`, own);
    await ok(
      baoRequest(bao.address, 'POST', `sys/auth/${approleMount}`, {
        ...root,
        body: { type: 'approle' },
      }),
      'approle',
    );
    await ok(
      baoRequest(bao.address, 'POST', `auth/${approleMount}/role/zsb`, {
        ...root,
        body: {
          token_policies: [`${prefix}-approle-broker`],
          token_ttl: '6s',
          token_max_ttl: '6s',
        },
      }),
      'role',
    );
    roleId = String(
      (
        (
          await ok(
            baoRequest(bao.address, 'GET', `auth/${approleMount}/role/zsb/role-id`, root),
            'role-id',
          )
        ).data as Record<string, unknown>
      ).role_id,
    );
    firstSecretId = String(
      (
        (
          await ok(
            baoRequest(bao.address, 'POST', `auth/${approleMount}/role/zsb/secret-id`, {
              ...root,
              body: {},
            }),
            'secret-id',
          )
        ).data as Record<string, unknown>
      ).secret_id,
    );
    await writeFile(path.join(fx.dir, 'role-id'), roleId);
    await writeFile(path.join(fx.dir, 'secret-id'), firstSecretId, { mode: 0o600 });
    // Left by an earlier run that crashed, readable by everyone: the rotation must not
    // inherit its mode (the broker refuses a secret-id file others can read).
    await writeFile(path.join(fx.dir, 'secret-id.zsb-rotating'), 'stale', { mode: 0o644 });
    await chmod(path.join(fx.dir, 'secret-id.zsb-rotating'), 0o644);

    broker = await startBroker(
      parseConfig({
        listen: { host: '127.0.0.1', port: 0 },
        issuers: [{ issuer: 'https://zuul.example.org', audience: 'https://secrets.example.org' }],
        openbao: {
          address: bao.address,
          auth: {
            method: 'approle',
            mount: approleMount,
            roleIdFile: path.join(fx.dir, 'role-id'),
            secretIdFile: path.join(fx.dir, 'secret-id'),
          },
          statePrefix: `${prefix}-state`,
        },
        policies: path.join(fx.dir, 'policies'),
        watchPolicies: false,
        rotation: {
          checkIntervalSeconds: 1,
          lockTtlSeconds: 10,
          brokerSecretId: { role: 'zsb', every: '1d' },
        },
        audit: { file: path.join(fx.dir, 'audit.log') },
      }),
      { logger: createLogger('info', logs) },
    );
  }, 120000);

  afterAll(async () => {
    await broker?.close();
    await fx?.cleanup();
    await pgAdminQuery(`DROP ROLE IF EXISTS "${staticUser}"`).catch(() => undefined);
  });

  const appRoleLogin = (secretId: string) =>
    baoRequest(bao.address, 'POST', `auth/${approleMount}/login`, {
      body: { role_id: roleId, secret_id: secretId },
    });

  it('rotates a static role and its own secret-id on schedule, and keeps working', async () => {
    const staticName = `static-role:${dbMount}/app`;
    const staticState = await eventually('the static role rotation', async () => {
      const s = await fx.state(staticName);
      return s?.lastOutcome === 'rotated' ? s : undefined;
    });
    expect(staticState.run).toBeUndefined();
    const creds = await ok(
      baoRequest(bao.address, 'GET', `${dbMount}/static-creds/app`, root),
      'creds',
    );
    const data = creds.data as { username: string; password: string };
    expect(await loginProblem(staticUser, data.password)).toBeUndefined();
    expect(await loginProblem(staticUser, 'initial-static')).toBe('28P01');

    await eventually('the secret-id rotation', async () => {
      const s = await fx.state('broker-approle-secret-id');
      return s?.lastOutcome === 'rotated' ? s : undefined;
    });
    const newSecretId = (await readFile(path.join(fx.dir, 'secret-id'), 'utf8')).trim();
    expect((await stat(path.join(fx.dir, 'secret-id'))).mode & 0o777).toBe(0o600);
    expect(newSecretId).not.toBe(firstSecretId);
    expect((await appRoleLogin(firstSecretId)).status).toBe(400);
    expect((await appRoleLogin(newSecretId)).status).toBe(200);

    // The broker's first token (6 s) has expired by now: it logged in again with the new
    // secret-id, so its credential is fine.
    await sleep(7000);
    const ready = await fetch(`${broker.url}/readyz`);
    const body = (await ready.json()) as { checks: { openbao: { status: string } } };
    // (The test's issuer is not reachable, so only the OpenBao check is asserted.)
    expect(body.checks.openbao.status).toBe('ok');

    const metrics = await (await fetch(`${broker.url}/metrics`)).text();
    expect(metrics).toMatch(
      /zsb_rotations_total\{rotation="broker-approle-secret-id",outcome="rotated"\} 1/,
    );
    expect(metrics).toContain(`zsb_rotations_total{rotation="${staticName}",outcome="rotated"} 1`);

    const audit = await readFile(path.join(fx.dir, 'audit.log'), 'utf8');
    const events = audit
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.filter((e) => e.event === 'secret.rotated').length).toBeGreaterThanOrEqual(2);
    for (const secret of [newSecretId, firstSecretId, data.password]) {
      expect(audit).not.toContain(secret);
      expect(logText).not.toContain(secret);
      expect(metrics).not.toContain(secret);
    }
  }, 90000);
});
