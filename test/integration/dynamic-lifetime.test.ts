/**
 * The lifetime guarantees of dynamic secrets with real processes: OpenBao's TTLs expire
 * credentials nobody revoked, and a broker killed with SIGKILL after issuing leaves a
 * ledger from which a restarted broker still revokes the whole build.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import {
  canLogin,
  type DynamicFixture,
  roleExists,
  setUpDynamic,
} from '../support/dynamic-setup.js';
import { brokerCall, until } from '../support/http.js';
import { exitOf, spawnZsb, waitForOutput } from '../support/process.js';
import { realOpenBao, uniquePrefix } from '../support/real-openbao.js';

const bao = realOpenBao();
let fixture: DynamicFixture;
let dir = '';
let issuer: ZuulIssuer;
let config = '';

async function startServe() {
  const child = spawnZsb(['serve', '--config', config], { cwd: dir });
  const out = await waitForOutput(child, /"msg":"broker listening"/);
  const url = /"url":"(http:\/\/[^"]+)"/.exec(out)?.[1] ?? '';
  return { child, url };
}

beforeAll(async () => {
  fixture = await setUpDynamic(uniquePrefix('life'), '6s');
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-life-'));
  // Policies get their own directory: every top-level YAML file there is a policy file.
  await mkdir(path.join(dir, 'policies'));
  await writeFile(path.join(dir, 'policies', 'dynamic.yaml'), fixture.policyYaml);
  const token = await bao.admin.createToken({
    policies: [fixture.brokerPolicy],
    ttlSeconds: 3600,
    orphan: true,
  });
  await writeFile(path.join(dir, 'token'), token.token, { mode: 0o600 });
  issuer = await ZuulIssuer.start({ modulusLength: 2048 });
  config = path.join(dir, 'config.yaml');
  await writeFile(
    config,
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      `issuers: [{ issuer: "${issuer.issuer}", audience: "https://secrets.example.org" }]`,
      'openbao:',
      `  address: "${bao.address}"`,
      `  auth: { method: token, tokenFile: "${path.join(dir, 'token')}" }`,
      `  statePrefix: "${fixture.statePrefix}"`,
      `  buildTokenRole: "${fixture.buildTokenRole}"`,
      `  buildPolicy: "${fixture.buildPolicy}"`,
      `policies: "${path.join(dir, 'policies')}"`,
      '',
    ].join('\n'),
  );
}, 60000);

afterAll(async () => {
  await issuer?.close();
  await fixture?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('credentials stop working after the grant TTL without any revoke', async () => {
  const broker = await startServe();
  try {
    const res = await brokerCall(
      broker.url,
      'POST',
      '/v1/fetch',
      issuer.mint({ 'build-uuid': '1'.repeat(32) }),
      {
        secrets: ['status-page-db'],
      },
    );
    expect(res.status).toBe(200);
    const db = (
      res.body.secrets as Record<
        string,
        { data: { username: string; password: string }; lease: { ttl: number } }
      >
    )['status-page-db'];
    expect(db?.lease.ttl).toBeLessThanOrEqual(6);
    expect(await canLogin(db?.data.username ?? '', db?.data.password ?? '')).toBe(true);
    await until(async () => !(await roleExists(db?.data.username ?? '')), 30000);
    expect(await canLogin(db?.data.username ?? '', db?.data.password ?? '')).toBe(false);
  } finally {
    broker.child.kill('SIGTERM');
    await exitOf(broker.child);
  }
}, 60000);

it('a broker killed with SIGKILL after issuing: a restarted one still revokes the build', async () => {
  const build = '2'.repeat(32);
  const first = await startServe();
  const res = await brokerCall(
    first.url,
    'POST',
    '/v1/fetch',
    issuer.mint({ 'build-uuid': build }),
    {
      secrets: ['status-page-db', 'ci-cert'],
    },
  );
  expect(res.status).toBe(200);
  const secrets = res.body.secrets as Record<string, { data: Record<string, string> }>;
  const username = secrets['status-page-db']?.data.username ?? '';
  expect(await roleExists(username)).toBe(true);
  first.child.kill('SIGKILL');
  await exitOf(first.child);

  const second = await startServe();
  try {
    const revoked = await brokerCall(
      second.url,
      'POST',
      '/v1/revoke',
      issuer.mint({ 'build-uuid': build, playbook: 'cleanup.yaml' }),
    );
    expect(revoked.status).toBe(200);
    expect(revoked.body).toEqual({ build, revoked: 2 });
    await until(async () => !(await roleExists(username)), 10000);
  } finally {
    second.child.kill('SIGTERM');
    expect(await exitOf(second.child)).toBe(0);
  }
}, 60000);
