/**
 * OpenStack application-credential rotation against a real Keystone and OpenBao, with
 * real `zsb rotate` processes: a rotation, SIGKILL at every step boundary (exactly one
 * credential survives, none leaks, the current one authenticates at every instant), the
 * grace period (the previous credential works until it ends, then is deleted and its
 * tokens die), a foreign edit (abort, the new credential removed), a rotator that may
 * not create credentials (restricted) and one that may (unrestricted, which stays).
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROTATION_BOUNDARIES } from '../../src/rotation/protocol.js';
import { registerCanary } from '../support/canary.js';
import {
  createProjectUser,
  type Keystone,
  type KeystoneUser,
  passwordToken,
  startKeystone,
} from '../support/keystone.js';
import { runZsb } from '../support/process.js';
import { baoRequest, realOpenBao, uniquePrefix } from '../support/real-openbao.js';
import {
  killRotationAt,
  type RotationBroker,
  rotationBroker,
  rotationStatus,
} from '../support/rotation-setup.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Credential {
  readonly id: string;
  readonly name: string;
}

/** The user's own view of Keystone: list, create, check credentials and tokens. */
class CloudUser {
  constructor(
    readonly keystone: Keystone,
    readonly user: KeystoneUser,
  ) {}

  private token(): Promise<string> {
    return passwordToken(this.keystone.authUrl, {
      username: this.user.name,
      password: this.user.password,
      projectName: this.user.projectName,
    });
  }

  /** One credential as Keystone shows it to its owner. */
  async show(id: string): Promise<Record<string, unknown>> {
    const response = await fetch(
      `${this.keystone.authUrl}/users/${this.user.id}/application_credentials/${id}`,
      { headers: { 'x-auth-token': await this.token() } },
    );
    expect(response.status).toBe(200);
    return ((await response.json()) as { application_credential: Record<string, unknown> })
      .application_credential;
  }

  async list(): Promise<Credential[]> {
    const response = await fetch(
      `${this.keystone.authUrl}/users/${this.user.id}/application_credentials`,
      { headers: { 'x-auth-token': await this.token() } },
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as { application_credentials: Credential[] };
    return body.application_credentials.map(({ id, name }) => ({ id, name }));
  }

  /** An application credential made by hand, as an operator seeds the first one. */
  async create(name: string, unrestricted = false): Promise<{ id: string; secret: string }> {
    const response = await fetch(
      `${this.keystone.authUrl}/users/${this.user.id}/application_credentials`,
      {
        method: 'POST',
        headers: { 'x-auth-token': await this.token(), 'content-type': 'application/json' },
        body: JSON.stringify({ application_credential: { name, unrestricted } }),
      },
    );
    expect(response.status).toBe(201);
    const body = (await response.json()) as {
      application_credential: { id: string; secret: string };
    };
    registerCanary(body.application_credential.secret);
    return body.application_credential;
  }
}

/** The status of a token issue with an application credential (201 works; 401/404 not). */
async function credentialLogin(authUrl: string, id: string, secret: string) {
  const response = await fetch(`${authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['application_credential'], application_credential: { id, secret } },
      },
    }),
  });
  await response.body?.cancel();
  const token = response.headers.get('x-subject-token');
  if (token) registerCanary(token);
  return { status: response.status, token };
}

/** Whether Keystone still accepts a token (GET /v3/auth/tokens validates it). */
async function tokenValid(authUrl: string, token: string): Promise<boolean> {
  const response = await fetch(`${authUrl}/auth/tokens`, {
    headers: { 'x-auth-token': token, 'x-subject-token': token },
  });
  await response.body?.cancel();
  return response.status === 200;
}

/**
 * A job that keeps authenticating with whatever the secret holds, until stopped. A refusal
 * counts only when the secret did not change around it (a credential that stopped being
 * current just then is a reader's race, not an instant without a working credential).
 */
function prober(fx: CloudFixture, authUrl: string) {
  let stop = false;
  let attempts = 0;
  const failures: string[] = [];
  const done = (async () => {
    while (!stop) {
      const seen = await fx.read();
      const login = await credentialLogin(
        authUrl,
        String(seen.data.application_credential_id),
        String(seen.data.application_credential_secret),
      );
      attempts++;
      if (login.status !== 201 && (await fx.read()).version === seen.version) {
        failures.push(`version ${seen.version}: ${login.status}`);
      }
      // Every login hashes the secret on Keystone: pace it, or the rotation waits for CPU.
      await sleep(300);
    }
  })();
  return {
    async stop() {
      stop = true;
      await done;
      return { attempts, failures };
    },
  };
}

interface CloudFixture {
  readonly cloud: CloudUser;
  readonly path: string;
  read(): Promise<{ data: Record<string, unknown>; version: number }>;
  /** Does the value the KV secret holds now authenticate? */
  currentWorks(): Promise<boolean>;
}

describe('application credential rotation on a real Keystone', () => {
  let keystone: Keystone;
  let broker: RotationBroker;
  let prefix: string;
  const fixtures: Record<'plain' | 'grace' | 'restricted' | 'unrestricted', CloudFixture> =
    {} as never;
  let rotatorCredentialId = '';
  const bao = realOpenBao();

  beforeAll(async () => {
    keystone = await startKeystone();
    console.info(
      `keystone: set-up ${keystone.timings.setupMs} ms, start ${keystone.timings.startMs} ms`,
    );
    prefix = uniquePrefix('appcred');
    const secrets: string[] = [];
    for (const kind of ['plain', 'grace', 'restricted', 'unrestricted'] as const) {
      const user = await createProjectUser(keystone, {
        user: `robot-${kind}`,
        project: `scs-${kind}`,
      });
      const cloud = new CloudUser(keystone, user);
      const first = await cloud.create(`seeded-${kind}`);
      const path = `${prefix}/${kind}/cloud`;
      await bao.admin.kvWrite('secret', path, {
        auth_url: keystone.authUrl,
        region_name: keystone.region,
        interface: 'public',
        application_credential_id: first.id,
        application_credential_secret: first.secret,
      });
      // The rotator's own login: the user's password, or an application credential
      // (restricted: the job's own one; unrestricted: one made for the rotator).
      const own = kind === 'unrestricted' ? await cloud.create('rotator', true) : first;
      if (kind === 'unrestricted') rotatorCredentialId = own.id;
      const rotator =
        kind === 'restricted' || kind === 'unrestricted'
          ? {
              auth_url: keystone.authUrl,
              application_credential_id: own.id,
              application_credential_secret: own.secret,
            }
          : {
              auth_url: keystone.authUrl,
              username: user.name,
              user_domain_name: 'Default',
              password: user.password,
              project_name: user.projectName,
              project_domain_name: 'Default',
            };
      await bao.admin.kvWrite('secret', `${prefix}/${kind}/rotator`, rotator);
      secrets.push(
        `  cloud-${kind}: { kv: { mount: secret, path: ${path} } }`,
        `  cloud-${kind}-rotator: { kv: { mount: secret, path: ${prefix}/${kind}/rotator } }`,
      );
      const read = async () => {
        const entry = await bao.admin.kvRead('secret', path);
        if (entry === null) throw new Error(`no secret ${path}`);
        // What the broker wrote is a secret: no log line may ever carry it.
        registerCanary(String(entry.data.application_credential_secret));
        return { data: { ...entry.data }, version: entry.version };
      };
      fixtures[kind] = {
        cloud,
        path,
        read,
        async currentWorks() {
          const { data } = await read();
          const login = await credentialLogin(
            keystone.authUrl,
            String(data.application_credential_id),
            String(data.application_credential_secret),
          );
          return login.status === 201;
        },
      };
    }
    const policy = [
      'secrets:',
      ...secrets,
      'rotations:',
      '  - secret: cloud-plain',
      '    every: 7d',
      '    target: { applicationCredential: { rotator: cloud-plain-rotator, grace: 0 } }',
      '  - secret: cloud-grace',
      '    every: 7d',
      '    target:',
      '      applicationCredential:',
      '        rotator: cloud-grace-rotator',
      // Long enough for the checks below to run inside it even on a loaded machine.
      '        grace: 15s',
      '        expiresAfter: 30d',
      '        namePrefix: scs-compliance',
      '        roles: [member]',
      '        accessRules: [{ service: identity, method: GET, path: /v3/auth/projects }]',
      '  - secret: cloud-restricted',
      '    every: 7d',
      '    target: { applicationCredential: { rotator: cloud-restricted-rotator, grace: 0 } }',
      '  - secret: cloud-unrestricted',
      '    every: 7d',
      '    target: { applicationCredential: { rotator: cloud-unrestricted-rotator, grace: 0 } }',
      '',
    ].join('\n');
    broker = await rotationBroker(prefix, policy);
  }, 180000);

  afterAll(async () => {
    await keystone?.stop();
    if (broker) await rm(broker.dir, { recursive: true, force: true });
    await baoRequest(bao.address, 'DELETE', `secret/metadata/${prefix}`, {
      token: bao.rootToken,
    }).catch(() => undefined);
  });

  const rotate = (name: string) =>
    runZsb(['rotate', name, '--config', broker.configFile], { cwd: broker.dir });

  it('rotates: a new credential works, the previous one is deleted and refused', async () => {
    const fx = fixtures.plain;
    const before = await fx.read();
    const started = Date.now();
    const result = await rotate('cloud-plain');
    const tookMs = Date.now() - started;
    console.info(`application credential rotation (zsb rotate, grace 0): ${tookMs} ms`);
    expect(result.stdout, result.stderr).toBe(
      `cloud-plain: rotated (version ${before.version + 1})\n`,
    );
    expect(result.code).toBe(0);
    const after = await fx.read();
    expect(after.data).toMatchObject({
      auth_url: keystone.authUrl,
      region_name: keystone.region,
      interface: 'public',
    });
    expect(String(after.data.application_credential_name)).toMatch(
      /^zsb-cloud-plain-\d{8}T\d{6}Z-[0-9a-f]{6}$/,
    );
    expect(after.data.application_credential_id).not.toBe(before.data.application_credential_id);
    expect(String(after.data.application_credential_secret)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await fx.currentWorks()).toBe(true);
    const old = await credentialLogin(
      keystone.authUrl,
      String(before.data.application_credential_id),
      String(before.data.application_credential_secret),
    );
    // Keystone answers a deleted application credential with 404, not 401.
    expect(old.status).toBe(404);
    expect(await fx.cloud.list()).toEqual([
      { id: after.data.application_credential_id, name: after.data.application_credential_name },
    ]);
    expect(result.stdout + result.stderr).not.toContain(
      String(after.data.application_credential_secret),
    );
  });

  it.each(ROTATION_BOUNDARIES)(
    'SIGKILL at %s, then a restart: exactly one credential survives and the current one always authenticates',
    async (boundary) => {
      const fx = fixtures.plain;
      const before = await fx.read();
      const job = prober(fx, keystone.authUrl);
      await killRotationAt(broker, 'cloud-plain', boundary, async () => {
        expect(await fx.currentWorks()).toBe(true);
      });
      expect(await fx.currentWorks()).toBe(true);
      const crashed = (await broker.state('cloud-plain'))?.run as { step: string } | undefined;
      if (boundary === 'locked' || boundary === 'finished') expect(crashed).toBeUndefined();
      else expect(crashed).toBeDefined();

      await sleep(1200); // the dead holder's lock (1 s) expires
      const restart = await rotate('cloud-plain');
      expect(restart.code, restart.stdout + restart.stderr).toBe(0);
      const after = await fx.read();
      expect(after.version).toBe(before.version + (boundary === 'finished' ? 2 : 1));
      expect((await broker.state('cloud-plain'))?.run).toBeUndefined();
      expect(await fx.currentWorks()).toBe(true);
      // A job authenticating all along never met an instant without a working credential.
      const probed = await job.stop();
      expect(probed.failures).toEqual([]);
      expect(probed.attempts).toBeGreaterThan(3);
      // None leaked: the user holds the current credential and nothing else.
      expect(await fx.cloud.list()).toEqual([
        { id: after.data.application_credential_id, name: after.data.application_credential_name },
      ]);
    },
    60000,
  );

  it('keeps the previous credential and its tokens working for the grace period, then deletes it', async () => {
    const fx = fixtures.grace;
    const before = await fx.read();
    const oldId = String(before.data.application_credential_id);
    const oldSecret = String(before.data.application_credential_secret);
    const oldLogin = await credentialLogin(keystone.authUrl, oldId, oldSecret);
    expect(oldLogin.status).toBe(201);
    const jobToken = String(oldLogin.token);

    const result = await rotate('cloud-grace');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      /^cloud-grace: rotated \(version \d+; the previous value is retired after \S+Z\)\n$/,
    );
    const after = await fx.read();
    expect(String(after.data.application_credential_name)).toMatch(/^scs-compliance-/);
    // Expiry, roles and access rules as declared, and restricted.
    const expires = Date.parse(String(after.data.expires_at));
    expect(Math.abs(expires - Date.now() - 30 * 86400_000)).toBeLessThan(120_000);
    const shown = await fx.cloud.show(String(after.data.application_credential_id));
    // `member` as declared (Keystone adds `reader`, which member implies).
    const roles = (shown.roles as Array<{ name: string }>).map((r) => r.name).sort();
    expect(roles).toEqual(['member', 'reader']);
    expect(shown).toMatchObject({
      unrestricted: false,
      access_rules: [
        expect.objectContaining({ service: 'identity', method: 'GET', path: '/v3/auth/projects' }),
      ],
    });
    // Keystone shows the time in UTC without a zone.
    expect(Date.parse(String(shown.expires_at).replace(/Z?$/, 'Z'))).toBe(expires);
    expect(await fx.currentWorks()).toBe(true);
    expect((await credentialLogin(keystone.authUrl, oldId, oldSecret)).status).toBe(201);
    expect(await tokenValid(keystone.authUrl, jobToken)).toBe(true);
    expect((await fx.cloud.list()).map((c) => c.id).sort()).toEqual(
      [oldId, String(after.data.application_credential_id)].sort(),
    );

    // No second rotation while the first one's grace runs.
    const early = await rotate('cloud-grace');
    expect(early.code).toBe(1);
    expect(early.stdout).toMatch(/^cloud-grace: waiting: the previous value is retired after /);
    expect((await fx.read()).version).toBe(after.version);

    const entry = await rotationStatus(broker, 'cloud-grace');
    expect(entry).toMatchObject({ step: 'promoted', lastOutcome: 'rotated' });
    expect(typeof entry?.finishAfter).toBe('string');

    await sleep(Math.max(0, Date.parse(String(entry?.finishAfter)) - Date.now() + 200));
    const finish = await rotate('cloud-grace');
    expect(finish.stdout, finish.stderr).toBe(
      `cloud-grace: finished (version ${after.version}; the previous value is retired)\n`,
    );
    expect(finish.code).toBe(0);
    expect((await credentialLogin(keystone.authUrl, oldId, oldSecret)).status).toBe(404);
    // Tokens issued from the deleted credential die with it.
    expect(await tokenValid(keystone.authUrl, jobToken)).toBe(false);
    expect(await fx.currentWorks()).toBe(true);
    expect(await fx.cloud.list()).toEqual([
      { id: after.data.application_credential_id, name: after.data.application_credential_name },
    ]);
  }, 60000);

  it('aborts on a foreign edit and deletes the credential it had made', async () => {
    const fx = fixtures.plain;
    const before = await fx.read();
    await killRotationAt(broker, 'cloud-plain', 'set');
    expect(await fx.cloud.list()).toHaveLength(2);
    // An operator puts another credential in by hand meanwhile.
    const manual = await fx.cloud.create(`by-hand-${randomBytes(3).toString('hex')}`);
    await bao.admin.kvWrite('secret', fx.path, {
      ...before.data,
      application_credential_id: manual.id,
      application_credential_secret: manual.secret,
    });
    await sleep(1200);
    const result = await rotate('cloud-plain');
    expect(result.stdout).toContain('cloud-plain: aborted: the secret changed during the rotation');
    expect(result.code).toBe(1);
    const after = await fx.read();
    expect(after.data.application_credential_id).toBe(manual.id);
    expect(await fx.currentWorks()).toBe(true);
    // The run's own credential is gone; the previous one and the manual one remain.
    expect((await fx.cloud.list()).map((c) => c.id).sort()).toEqual(
      [String(before.data.application_credential_id), manual.id].sort(),
    );
  }, 60000);

  it('a rotator holding a restricted application credential cannot rotate: aborted, nothing changed', async () => {
    const fx = fixtures.restricted;
    const before = await fx.read();
    const result = await rotate('cloud-restricted');
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      'cloud-restricted: aborted: Keystone refused to create an application credential (403)',
    );
    expect((await fx.read()).version).toBe(before.version);
    expect(await fx.currentWorks()).toBe(true);
    expect(await fx.cloud.list()).toHaveLength(1);
    expect((await broker.state('cloud-restricted'))?.run).toBeUndefined();
  }, 60000);

  it('a rotator holding an unrestricted application credential rotates; its own credential stays', async () => {
    const fx = fixtures.unrestricted;
    const before = await fx.read();
    const result = await rotate('cloud-unrestricted');
    expect(result.stdout, result.stderr).toBe(
      `cloud-unrestricted: rotated (version ${before.version + 1})\n`,
    );
    const after = await fx.read();
    expect(await fx.currentWorks()).toBe(true);
    expect((await fx.cloud.list()).map((c) => c.id).sort()).toEqual(
      [rotatorCredentialId, String(after.data.application_credential_id)].sort(),
    );
  }, 60000);
});
