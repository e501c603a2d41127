/**
 * The Zuul roles under zuul/roles/, run by the real ansible-playbook (-vvv) through the
 * example playbooks of zuul/playbooks/, against a broker in-process, a real OpenBao and
 * this machine's PostgreSQL: secrets arrive as 0600 files (plain and wrapped), neither a
 * secret value nor the token appears in Ansible's output, and the cleanup playbook
 * revokes the build's database credentials.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import type { RunningBroker } from '../../src/main.js';
import {
  type PlaybookRun,
  requireAnsiblePlaybook,
  runPlaybook,
  tail,
  ZUUL_DIR,
} from '../support/ansible.js';
import { LogCapture } from '../support/app.js';
import {
  canLogin,
  type DynamicBroker,
  roleExists,
  startDynamicBroker,
} from '../support/dynamic-setup.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { until } from '../support/http.js';
import { realOpenBao, uniquePrefix } from '../support/real-openbao.js';

const FETCH = path.join(ZUUL_DIR, 'playbooks', 'broker-fetch.yaml');
const FORGET = path.join(ZUUL_DIR, 'playbooks', 'broker-forget.yaml');
const REVOKE = path.join(ZUUL_DIR, 'playbooks', 'broker-revoke.yaml');
const PLAYBOOK_TIMEOUT = 180000;

const bao = realOpenBao();
const prefix = uniquePrefix('ansible');
const CANARY = `canary-${randomBytes(16).toString('hex')}`;
const DEPLOY_KEY = { key: CANARY, note: 'line one\nline two ✓' };
let started: DynamicBroker | undefined;
let dir: string;
let issuer: ZuulIssuer;
let broker: RunningBroker;
const logs = new LogCapture();

const KV_POLICY = `
secrets:
  deploy-canary:
    kv: { mount: secret, path: ${prefix}/deploy }
grants:
  - name: ansible-roles
    match: { tenant: scs, pipeline: periodic-daily }
    allow: [deploy-canary]
`;

interface DbCreds {
  username: string;
  password: string;
}

function newBuild(): string {
  return randomBytes(16).toString('hex');
}

/** What a Zuul job gives the playbooks: the token as `openbao_id`, the job's variables. */
function jobVars(token: string, secretsDir: string, extra: Record<string, unknown> = {}) {
  return {
    openbao_id: token,
    broker_url: broker.url,
    broker_secrets: ['deploy-canary', 'status-page-db'],
    broker_secrets_dir: secretsDir,
    ...extra,
  };
}

async function readSecretFile(file: string): Promise<{ mode: number; data: unknown }> {
  const info = await stat(file);
  return { mode: info.mode & 0o777, data: JSON.parse(await readFile(file, 'utf8')) };
}

/** Fails without echoing the value, so a leak does not leak again into the test report. */
function expectAbsent(run: PlaybookRun, values: Record<string, string>): void {
  const output = `${run.stdout}\n${run.stderr}`;
  for (const [what, value] of Object.entries(values)) {
    expect(value.length, `${what} is a real value`).toBeGreaterThan(8);
    expect(output.includes(value), `${what} appears in ansible-playbook's output`).toBe(false);
  }
}

/** The JWT and its signature alone: both must stay out of the output. */
function tokenValues(token: string): Record<string, string> {
  return { token, 'token signature': token.split('.')[2] ?? '' };
}

beforeAll(async () => {
  await bao.admin.kvWrite('secret', `${prefix}/deploy`, DEPLOY_KEY);
  await bao.admin.putAclPolicy(
    `kv-${prefix}`,
    `path "secret/data/${prefix}/deploy" { capabilities = ["read"] }\n`,
  );
  started = await startDynamicBroker({
    prefix,
    grantTtl: '15m',
    logs,
    extraPolicies: { 'kv.yaml': KV_POLICY },
    extraAclPolicies: [`kv-${prefix}`],
  });
  ({ broker, issuer, dir } = started);
}, 60000);

afterAll(async () => {
  await started?.close();
});

// A missing ansible-playbook fails each test (in the test, not in a hook: vitest 4 exits 0
// when only a beforeAll hook fails and the tests are reported as skipped).
describe.each([
  { wrap: false, label: 'plain' },
  { wrap: true, label: 'wrapped' },
])('the example playbooks with ansible-playbook -vvv ($label delivery)', ({ wrap }) => {
  it(
    'write the secrets as 0600 files, leak nothing, and the cleanup playbook revokes the build',
    async () => {
      await requireAnsiblePlaybook();
      const build = newBuild();
      const workDir = await mkdtemp(path.join(dir, 'run-'));
      const secretsDir = path.join(workDir, 'secrets');
      const extra = wrap ? { broker_wrap: true, broker_openbao_url: bao.address } : {};

      // pre-run: fetch (Zuul mints a token per playbook; all share the build).
      const fetchToken = issuer.mint({ 'build-uuid': build });
      const fetched = await runPlaybook(
        FETCH,
        jobVars(fetchToken, secretsDir, extra),
        workDir,
        PLAYBOOK_TIMEOUT,
      );
      expect(fetched.code, tail(fetched)).toBe(0);

      expect(await stat(secretsDir).then((s) => s.mode & 0o777)).toBe(0o700);
      const kv = await readSecretFile(path.join(secretsDir, 'deploy-canary.json'));
      expect(kv.mode).toBe(0o600);
      expect(kv.data).toEqual(DEPLOY_KEY);
      const db = await readSecretFile(path.join(secretsDir, 'status-page-db.json'));
      expect(db.mode).toBe(0o600);
      const creds = db.data as DbCreds;
      expect(creds.username).toMatch(/^v-/);
      expect(await canLogin(creds.username, creds.password)).toBe(true);

      expectAbsent(fetched, {
        canary: CANARY,
        'database password': creds.password,
        ...tokenValues(fetchToken),
      });
      expect(fetched.stdout).toMatch(/hidden due to the fact that 'no_log: true' was specified/);

      // post-run: the files go.
      const forgot = await runPlaybook(
        FORGET,
        jobVars(issuer.mint({ 'build-uuid': build }), secretsDir),
        workDir,
        PLAYBOOK_TIMEOUT,
      );
      expect(forgot.code, tail(forgot)).toBe(0);
      await expect(stat(secretsDir)).rejects.toThrow(/ENOENT/);

      // cleanup-run: revoke with the cleanup playbook's own token.
      const revokeToken = issuer.mint({ 'build-uuid': build });
      const revoked = await runPlaybook(
        REVOKE,
        jobVars(revokeToken, secretsDir),
        workDir,
        PLAYBOOK_TIMEOUT,
      );
      expect(revoked.code, tail(revoked)).toBe(0);
      const count = /Revoked (\d+) item\(s\) of build ([0-9a-f]{32})/.exec(revoked.stdout);
      expect(count?.[2]).toBe(build);
      expect(Number(count?.[1])).toBeGreaterThanOrEqual(1);
      expectAbsent(revoked, tokenValues(revokeToken));
      await until(async () => !(await roleExists(creds.username)));
      expect(await canLogin(creds.username, creds.password)).toBe(false);
    },
    4 * PLAYBOOK_TIMEOUT,
  );
});

describe('broker-fetch-secrets failures', () => {
  it(
    'fail the playbook with the broker problem code, without the token',
    async () => {
      await requireAnsiblePlaybook();
      const workDir = await mkdtemp(path.join(dir, 'run-'));
      const secretsDir = path.join(workDir, 'secrets');
      // The grants pin periodic-daily; a pre-merge pipeline is refused.
      const token = issuer.mint({ 'build-uuid': newBuild(), pipeline: 'check' });
      const run = await runPlaybook(FETCH, jobVars(token, secretsDir), workDir, PLAYBOOK_TIMEOUT);
      expect(run.code, tail(run)).not.toBe(0);
      expect(run.stdout).toMatch(/HTTP 403\s+forbidden/);
      expect(run.stdout).toMatch(/request id [0-9a-zA-Z-]+/);
      expectAbsent(run, tokenValues(token));
      await expect(stat(secretsDir)).rejects.toThrow(/ENOENT/);
    },
    2 * PLAYBOOK_TIMEOUT,
  );
});

describe('broker-fetch-secrets and broker-revoke retries', () => {
  let front: FaultProxy;
  beforeAll(async () => {
    // In front of the broker: answers as scripted, then passes through.
    front = await FaultProxy.start(broker.url);
  });
  afterAll(async () => {
    await front?.close();
  });

  /** The next `times` requests get `status` with Retry-After (every one without `times`). */
  async function answerFirst(status: number, times?: number): Promise<void> {
    front.resetCount();
    await front.setMode({
      kind: 'status',
      status,
      headers: { 'retry-after': '1' },
      ...(times === undefined ? {} : { times }),
    });
  }

  function frontCalls(pathName: string): number {
    return front.seen.filter((seen) => seen.path === pathName).length;
  }

  it(
    'retry 503 and 429 until the broker answers, then deliver and revoke',
    async () => {
      await requireAnsiblePlaybook();
      const build = newBuild();
      const workDir = await mkdtemp(path.join(dir, 'run-'));
      const secretsDir = path.join(workDir, 'secrets');
      const vars = (token: string) => ({
        ...jobVars(token, secretsDir),
        broker_url: front.url,
        broker_retry_delay: 1,
      });

      // An OpenBao election as the broker shows it: 503 twice.
      await answerFirst(503, 2);
      const fetchToken = issuer.mint({ 'build-uuid': build });
      const fetched = await runPlaybook(FETCH, vars(fetchToken), workDir, PLAYBOOK_TIMEOUT);
      expect(fetched.code, tail(fetched)).toBe(0);
      expect(frontCalls('/v1/fetch')).toBe(3);
      expect(fetched.stdout).toMatch(
        /FAILED - RETRYING: \[localhost\]: Fetch the secrets from the broker/,
      );
      const kv = await readSecretFile(path.join(secretsDir, 'deploy-canary.json'));
      expect(kv.data).toEqual(DEPLOY_KEY);
      expectAbsent(fetched, { canary: CANARY, ...tokenValues(fetchToken) });

      // A rate limit at the end of the build: 429 once.
      await answerFirst(429, 1);
      const revokeToken = issuer.mint({ 'build-uuid': build });
      const revoked = await runPlaybook(REVOKE, vars(revokeToken), workDir, PLAYBOOK_TIMEOUT);
      expect(revoked.code, tail(revoked)).toBe(0);
      expect(frontCalls('/v1/revoke')).toBe(2);
      expect(revoked.stdout).toMatch(new RegExp(`Revoked [1-9]\\d* item\\(s\\) of build ${build}`));
      expectAbsent(revoked, tokenValues(revokeToken));
    },
    3 * PLAYBOOK_TIMEOUT,
  );

  it(
    'give up after broker_retries with the broker problem, and never retry a refusal',
    async () => {
      await requireAnsiblePlaybook();
      const workDir = await mkdtemp(path.join(dir, 'run-'));
      const secretsDir = path.join(workDir, 'secrets');
      const token = issuer.mint({ 'build-uuid': newBuild() });
      const vars = { ...jobVars(token, secretsDir), broker_url: front.url, broker_retry_delay: 0 };

      await answerFirst(503);
      const unavailable = await runPlaybook(
        FETCH,
        { ...vars, broker_retries: 2 },
        workDir,
        PLAYBOOK_TIMEOUT,
      );
      expect(unavailable.code, tail(unavailable)).not.toBe(0);
      expect(frontCalls('/v1/fetch')).toBe(3);
      expect(unavailable.stdout).toMatch(/The broker refused or failed the fetch[^\n]*\s+HTTP 503/);
      expectAbsent(unavailable, tokenValues(token));

      // 403 through the same front: one request, no retry.
      front.resetCount();
      await front.setMode({ kind: 'pass' });
      const refusedToken = issuer.mint({ 'build-uuid': newBuild(), pipeline: 'check' });
      const refused = await runPlaybook(
        FETCH,
        { ...jobVars(refusedToken, secretsDir), broker_url: front.url, broker_retry_delay: 0 },
        workDir,
        PLAYBOOK_TIMEOUT,
      );
      expect(refused.code, tail(refused)).not.toBe(0);
      expect(refused.stdout).toMatch(/HTTP 403\s+forbidden/);
      expect(frontCalls('/v1/fetch')).toBe(1);
      await expect(stat(secretsDir)).rejects.toThrow(/ENOENT/);
    },
    3 * PLAYBOOK_TIMEOUT,
  );
});
