/**
 * Dynamic secrets against a real OpenBao and this machine's PostgreSQL: database
 * credentials, certificates and OpenBao tokens issued under a per-build token, recorded
 * in the build ledger, revoked by POST /v1/revoke, expired by their TTL, isolated per build.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import type { RunningBroker } from '../../src/main.js';
import { LogCapture } from '../support/app.js';
import {
  canLogin,
  type DynamicBroker,
  type DynamicFixture,
  roleExists,
  startDynamicBroker,
} from '../support/dynamic-setup.js';
import { brokerCall, until } from '../support/http.js';
import { baoRequest, realOpenBao, uniquePrefix } from '../support/real-openbao.js';

const bao = realOpenBao();
let started: DynamicBroker | undefined;
let fixture: DynamicFixture;
let issuer: ZuulIssuer;
let broker: RunningBroker;
const logs = new LogCapture();

interface Entry {
  data: Record<string, string>;
  lease: { id: string; ttl: number; renewable: boolean } | null;
  expiresAt: string;
  wrapped?: { token: string };
}

async function fetchSecrets(token: string, secrets: string[], wrap = false) {
  const res = await call('POST', '/v1/fetch', token, { secrets, wrap });
  if (res.status !== 200) throw new Error(`fetch ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.secrets as Record<string, Entry>;
}

const call = (method: string, route: string, token: string, body?: unknown) =>
  brokerCall(broker.url, method, route, token, body);

beforeAll(async () => {
  started = await startDynamicBroker({ prefix: uniquePrefix('dyn'), grantTtl: '15m', logs });
  ({ fixture, broker, issuer } = started);
}, 60000);

afterAll(async () => {
  await started?.close();
});

describe('database credentials', () => {
  it('log in to PostgreSQL, and no longer after POST /v1/revoke', async () => {
    const token = issuer.mint();
    const secrets = await fetchSecrets(token, ['status-page-db']);
    const db = secrets['status-page-db'];
    expect(db?.data.username).toMatch(/^v-/);
    expect(db?.lease?.id).toMatch(new RegExp(`^${fixture.dbMount}/creds/ro/`));
    // Bounded by the grant's 15 minutes, not the role's 1 h.
    expect(db?.lease?.ttl).toBeLessThanOrEqual(900);
    expect(Date.parse(db?.expiresAt ?? '')).toBeLessThanOrEqual(Date.now() + 900_000 + 2000);
    const { username = '', password = '' } = db?.data ?? {};
    expect(await canLogin(username, password)).toBe(true);
    const metric = async (name: string) => {
      const text = await (await fetch(`${broker.url}/metrics`)).text();
      return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
    };
    const issuedBefore = await metric('zsb_leases_issued_total');
    expect(issuedBefore).toBeGreaterThanOrEqual(1);
    const liveBefore = await metric('zsb_build_tokens_active');
    expect(liveBefore).toBeGreaterThanOrEqual(1);

    const revoked = await call(
      'POST',
      '/v1/revoke',
      issuer.mint({
        'build-uuid': JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString())[
          'build-uuid'
        ],
      }),
    );
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked).toBeGreaterThanOrEqual(1);
    // The revoked build's token no longer counts as live.
    expect(await metric('zsb_build_tokens_active')).toBe(liveBefore - 1);
    await until(async () => !(await roleExists(username)));
    expect(await canLogin(username, password)).toBe(false);
    // Idempotent.
    expect((await call('POST', '/v1/revoke', token)).body).toMatchObject({ revoked: 0 });
  });

  it("a build's revoke never reaches another build's leases", async () => {
    const a = issuer.mint({ 'build-uuid': 'a'.repeat(32) });
    const b = issuer.mint({ 'build-uuid': 'b'.repeat(32) });
    const credsA = (await fetchSecrets(a, ['status-page-db']))['status-page-db'];
    const credsB = (await fetchSecrets(b, ['status-page-db']))['status-page-db'];
    expect((await call('POST', '/v1/revoke', a)).status).toBe(200);
    await until(async () => !(await roleExists(credsA?.data.username ?? '')));
    expect(await roleExists(credsB?.data.username ?? '')).toBe(true);
    expect(await canLogin(credsB?.data.username ?? '', credsB?.data.password ?? '')).toBe(true);
    await call('POST', '/v1/revoke', b);
  });

  it('reuses the build token across playbooks of one build, and revoke takes them all', async () => {
    const build = 'c'.repeat(32);
    const first = (
      await fetchSecrets(issuer.mint({ 'build-uuid': build, playbook: 'pre.yaml' }), [
        'status-page-db',
      ])
    )['status-page-db'];
    const second = (
      await fetchSecrets(issuer.mint({ 'build-uuid': build, playbook: 'run.yaml' }), [
        'status-page-db',
      ])
    )['status-page-db'];
    expect(first?.data.username).not.toBe(second?.data.username);
    const revoked = await call(
      'POST',
      '/v1/revoke',
      issuer.mint({ 'build-uuid': build, playbook: 'cleanup.yaml' }),
    );
    expect(revoked.body.revoked).toBe(1);
    await until(
      async () =>
        !(await roleExists(first?.data.username ?? '')) &&
        !(await roleExists(second?.data.username ?? '')),
    );
  });

  it('delivered wrapped, unwrap once at OpenBao and never again', async () => {
    const token = issuer.mint({ 'build-uuid': 'd'.repeat(32) });
    const entry = (await fetchSecrets(token, ['status-page-db'], true))['status-page-db'];
    const wrapToken = entry?.wrapped?.token ?? '';
    const first = await baoRequest(bao.address, 'POST', 'sys/wrapping/unwrap', {
      token: wrapToken,
    });
    expect(first.status).toBe(200);
    const creds = first.body.data as { username: string; password: string };
    expect(await canLogin(creds.username, creds.password)).toBe(true);
    expect(
      (await baoRequest(bao.address, 'POST', 'sys/wrapping/unwrap', { token: wrapToken })).status,
    ).toBe(400);
    await call('POST', '/v1/revoke', token);
    await until(async () => !(await roleExists(creds.username)));
  });
});

describe('certificates and OpenBao tokens', () => {
  it('issues a certificate named from the identity and revokes it by serial', async () => {
    const build = 'e'.repeat(32);
    const token = issuer.mint({ 'build-uuid': build });
    const cert = (await fetchSecrets(token, ['ci-cert']))['ci-cert'];
    expect(cert?.data.certificate).toContain('BEGIN CERTIFICATE');
    expect(cert?.data.private_key).toContain('PRIVATE KEY');
    const serial = cert?.data.serial_number ?? '';
    const before = await baoRequest(bao.address, 'GET', `${fixture.pkiMount}/cert/${serial}`);
    expect((before.body.data as { revocation_time: number }).revocation_time).toBe(0);
    const revoked = await call('POST', '/v1/revoke', token);
    expect(revoked.body.revoked).toBe(2); // the build token and the certificate
    const after = await baoRequest(bao.address, 'GET', `${fixture.pkiMount}/cert/${serial}`);
    expect((after.body.data as { revocation_time: number }).revocation_time).toBeGreaterThan(0);
  });

  it('issues an OpenBao token limited to the listed policies, dead after revoke', async () => {
    const token = issuer.mint({ 'build-uuid': 'f'.repeat(32) });
    const entry = (await fetchSecrets(token, ['bao-token']))['bao-token'];
    const jobToken = entry?.data.token ?? '';
    const read = await baoRequest(bao.address, 'GET', `secret/data/${fixture.prefix}/e2e`, {
      token: jobToken,
    });
    expect(read.status).toBe(200);
    const elsewhere = await baoRequest(bao.address, 'GET', `secret/data/${fixture.prefix}/other`, {
      token: jobToken,
    });
    expect(elsewhere.status).toBe(403);
    await call('POST', '/v1/revoke', token);
    await until(
      async () =>
        (await baoRequest(bao.address, 'GET', 'auth/token/lookup-self', { token: jobToken }))
          .status === 403,
    );
  });
});

it('never logged credentials, certificates or tokens', () => {
  const text = logs.text();
  expect(text).not.toMatch(/BEGIN (CERTIFICATE|EC PRIVATE KEY|PRIVATE KEY)/);
  expect(text).not.toMatch(/"password"/);
  expect(text).not.toMatch(/"client_token"|s\.[A-Za-z0-9]{20,}/);
});
