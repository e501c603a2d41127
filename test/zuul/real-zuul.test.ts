/**
 * End to end against a real Zuul 14.3.0 (scheduler, executor, web, ZooKeeper with TLS,
 * PostgreSQL), a real OpenBao and the broker as a real process (test/zuul/support/
 * stack.ts). Real jobs run on the executor (empty nodeset, plays on localhost) from a
 * timer pipeline and a post pipeline; results come from zuul-web's REST API and the
 * broker's audit log. One Zuul serves every case, so the cases run in this order.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { captureText, registerCanary, registerToken } from '../support/canary.js';
import { CANARY_PREFIX, LOG_DIR_ENV, readCanaries } from '../support/canary-scan.js';
import { AUDIENCE, commitFiles, commitOnBranch, HOST, TENANT } from './support/repos.js';
import { type Build, type Stack, startStack } from './support/stack.js';

const plantCanary = process.env.ZSB_ZUUL_PLANT_CANARY === '1';
const BUILD_WAIT = 150000;

// Started by the first test that needs it, not in beforeAll: vitest reports the tests of a
// failed beforeAll as skipped and can exit 0; here a stack that cannot start fails them.
let starting: Promise<Stack> | undefined;
let startedAt = 0;
function stack(): Promise<Stack> {
  starting ??= startStack({ plantCanary }).then((s) => {
    startedAt = Date.now();
    return s;
  });
  return starting;
}

afterAll(async () => {
  const s = await starting?.catch(() => undefined);
  await s?.stop();
}, 120000);

function describeBuild(b: Build): string {
  return `${b.job_name} build ${b.uuid} in ${b.pipeline}: ${b.result}`;
}

/** A build's result, with the service log tails when it is not the expected one. */
async function expectResult(s: Stack, build: Build, result: string): Promise<void> {
  if (build.result !== result) {
    throw new Error(`expected ${result}, got ${describeBuild(build)}\n${s.tails(25)}`);
  }
}

/**
 * The Zuul ID token the zsb-revoke job's run playbook left for the suite (registered as a
 * canary at once): its decoded header and claims, never the token itself in a message.
 */
async function runToken(s: Stack, build: Build) {
  const jwt = (await readFile(path.join(s.outDir, `${build.uuid}-run.jwt`), 'utf8')).trim();
  registerToken(jwt);
  const [header = '', payload = ''] = jwt.split('.');
  const decode = (part: string) =>
    JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
  return { jwt, header: decode(header), claims: decode(payload) };
}

describe('the broker with a real Zuul 14.3.0', () => {
  it('loads the tenant, the shipped zuul/ kit included, with no configuration errors', async () => {
    const s = await stack();
    const errors = (await s.api('/config-errors')) as {
      error?: string;
      source_context?: unknown;
    }[];
    expect(Array.isArray(errors)).toBe(true);
    expect(
      errors.map((e) => `${JSON.stringify(e.source_context)}: ${e.error}`),
      'config errors of the tenant',
    ).toEqual([]);
    const projects = (await s.api('/projects')) as { name: string; type: string }[];
    const types = Object.fromEntries(projects.map((p) => [p.name, p.type]));
    expect(types).toEqual({
      'zuul-config': 'config',
      kit: 'untrusted',
      'proj-a': 'untrusted',
      'proj-b': 'untrusted',
      app: 'untrusted',
      other: 'untrusted',
    });
  }, 300000);

  it('a granted job gets its secret (the job compares its hash) and the audit log records it', async () => {
    const s = await stack();
    const build = await s.nextBuild('zsb-granted', startedAt, BUILD_WAIT);
    await expectResult(s, build, 'SUCCESS');
    const issued = (await s.audit()).filter(
      (e) => e.event === 'secret.issued' && e.identity?.build === build.uuid,
    );
    expect(issued.map((e) => e.secrets?.map((x) => x.name))).toEqual([['e2e-granted']]);
    expect(issued[0]?.identity?.project).toBe(`${HOST}/zuul-config`);
  });

  it('a job that no grant covers gets 403, and its build fails', async () => {
    const s = await stack();
    const build = await s.nextBuild('zsb-denied', startedAt, BUILD_WAIT);
    await expectResult(s, build, 'FAILURE');
    const events = (await s.audit()).filter((e) => e.identity?.build === build.uuid);
    expect(events.map((e) => `${e.event} ${e.outcome}`)).toEqual(['secret.denied denied']);
    const output = await readFile(
      path.join(s.dir, 'jobs', build.uuid, 'work', 'logs', 'job-output.txt'),
      'utf8',
    );
    expect(output).toMatch(/HTTP 403\s+forbidden/);
  });

  it('a cleanup playbook revokes the build: audited, and the issued OpenBao token is dead', async () => {
    const s = await stack();
    const build = await s.nextBuild('zsb-revoke', startedAt, BUILD_WAIT);
    // SUCCESS includes the run playbook's own check that the token worked at OpenBao.
    await expectResult(s, build, 'SUCCESS');
    const events = (await s.audit()).filter((e) => e.identity?.build === build.uuid);
    expect(events.map((e) => e.event)).toEqual(['secret.issued', 'build.revoked']);
    expect(events[0]?.secrets?.map((x) => x.kind)).toEqual(['token']);
    expect(events[1]?.outcome).toBe('revoked');
    expect(events[1]?.revoked ?? 0).toBeGreaterThanOrEqual(1);
    const issued = JSON.parse(
      await readFile(path.join(s.outDir, `${build.uuid}-token.json`), 'utf8'),
    ) as { token?: unknown };
    expect(typeof issued.token).toBe('string');
    const token = String(issued.token);
    registerCanary(token);
    const res = await fetch(`${s.openbaoUrl}/v1/auth/token/lookup-self`, {
      headers: { 'X-Vault-Token': token },
    });
    await res.body?.cancel();
    expect(res.status, 'lookup-self with the revoked build token child').toBe(403);
    // The token the broker verified for it, as Zuul minted it (shared/design/zuul-token.md).
    const { header, claims } = await runToken(s, build);
    expect(header).toMatchObject({ alg: 'RS256', typ: 'JWT' });
    expect(String(header.kid)).toMatch(/^RS256-\d+$/);
    expect(claims).toMatchObject({
      iss: s.webUrl,
      sub: `secret:${TENANT}/${HOST}/zuul-config/broker-id`,
      aud: AUDIENCE,
      tenant: TENANT,
      'build-uuid': build.uuid,
      'job-name': 'zsb-revoke',
      pipeline: 'periodic',
      playbook: `${HOST}/zuul-config/playbooks/token.yaml`,
    });
    expect(Number(claims.exp) - Number(claims.iat)).toBe(600);
  });

  it('build binding: zuul-web still shows the build running during its cleanup playbook; the token replayed after the build ended is refused', async () => {
    const s = await stack();
    const build = await s.nextBuild('zsb-revoke', startedAt, BUILD_WAIT);
    await expectResult(s, build, 'SUCCESS');
    const left = async (when: string) =>
      JSON.parse(await readFile(path.join(s.outDir, `${build.uuid}-${when}.json`), 'utf8')) as {
        status: number;
        at: string;
        record: { result: unknown; end_time: unknown; start_time: unknown } | null;
      };
    // The record as the first playbook began (404: not written yet; the binding waits then).
    const first = await left('first');
    console.info(
      `build ${build.uuid}: zuul-web record at the first playbook's start: HTTP ${first.status}` +
        (first.record ? `, start_time ${String(first.record.start_time)}` : ''),
    );
    expect([200, 404]).toContain(first.status);
    // Zuul sets result and end_time only after the cleanup playbooks.
    const cleanup = await left('cleanup');
    expect(cleanup.status).toBe(200);
    expect(cleanup.record).toMatchObject({ result: null, end_time: null });
    const utc = (t: string) => Date.parse(/Z$|[+-]\d\d:\d\d$/.test(t) ? t : `${t}Z`);
    expect(utc(String(build.end_time))).toBeGreaterThanOrEqual(utc(cleanup.at) - 1000);
    // The run playbook's token is valid for 600 s; the build has ended. Past the binding's
    // cache (5 s after the build's end), the broker asks zuul-web again and refuses.
    const { jwt } = await runToken(s, build);
    const wait = Date.parse(`${build.end_time}Z`) + 6000 - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const replay = await fetch(`${s.brokerUrl}/v1/fetch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
      body: JSON.stringify({ secrets: ['e2e-token'] }),
    });
    expect(replay.status, "a fetch with the finished build's token").toBe(401);
    expect(replay.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    await replay.body?.cancel();
    const refused = (await s.audit()).filter(
      (e) => e.event === 'secret.refused' && e.identity?.build === build.uuid,
    );
    expect(refused.map((e) => e.reason)).toEqual(['build ended (SUCCESS)']);
    // Issued while it ran: the audit line carries what the binding learnt.
    const issued = (await s.audit()).find(
      (e) => e.event === 'secret.issued' && e.identity?.build === build.uuid,
    );
    expect(issued?.identity).toMatchObject({
      buildProject: `${HOST}/zuul-config`,
      branch: 'master',
    });
  });

  it('build binding: one shared token secret, a grant pinned to buildProject app and branch main serves only app@main', async () => {
    const s = await stack();
    const pushed = Date.now();
    const note = { 'PUSHED.txt': `pushed at ${new Date(pushed).toISOString()}\n` };
    await commitOnBranch(path.join(s.reposDir, 'app'), 'main', note, 'a push to app main');
    await commitOnBranch(path.join(s.reposDir, 'app'), 'feature', note, 'a push to app feature');
    await commitOnBranch(path.join(s.reposDir, 'other'), 'main', note, 'a push to other main');
    const key = (b: Build) => `${b.ref?.project}@${b.ref?.branch}`;
    const builds = new Map<string, Build>();
    const deadline = Date.now() + BUILD_WAIT;
    while (builds.size < 3 && Date.now() < deadline) {
      for (const b of await s.builds('zsb-bound', pushed))
        if (!builds.has(key(b))) builds.set(key(b), b);
      if (builds.size < 3) await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    expect([...builds.keys()].sort(), `zsb-bound builds\n${s.tails(15)}`).toEqual([
      'app@feature',
      'app@main',
      'other@main',
    ]);
    const get = (k: string) => builds.get(k) as Build;
    for (const b of builds.values()) expect(b.pipeline).toBe('post');
    await expectResult(s, get('app@main'), 'SUCCESS');
    await expectResult(s, get('app@feature'), 'FAILURE');
    await expectResult(s, get('other@main'), 'FAILURE');
    const audit = await s.audit();
    const of = (b: Build) =>
      audit
        .filter((e) => e.identity?.build === b.uuid)
        .map((e) => [e.event, e.identity?.project, e.identity?.buildProject, e.identity?.branch]);
    const cfg = `${HOST}/zuul-config`;
    expect(of(get('app@main'))).toEqual([['secret.issued', cfg, `${HOST}/app`, 'main']]);
    expect(of(get('app@feature'))).toEqual([['secret.denied', cfg, `${HOST}/app`, 'feature']]);
    expect(of(get('other@main'))).toEqual([['secret.denied', cfg, `${HOST}/other`, 'main']]);
  });

  it('per-project identities: a grant for proj-a serves proj-a and refuses proj-b', async () => {
    const s = await stack();
    const [a, b] = await Promise.all([
      s.nextBuild('proj-a-fetch', startedAt, BUILD_WAIT),
      s.nextBuild('proj-b-fetch', startedAt, BUILD_WAIT),
    ]);
    await expectResult(s, a, 'SUCCESS');
    await expectResult(s, b, 'FAILURE');
    const audit = await s.audit();
    const of = (build: Build) => audit.filter((e) => e.identity?.build === build.uuid);
    expect(of(a).map((e) => [e.event, e.identity?.project])).toEqual([
      ['secret.issued', `${HOST}/proj-a`],
    ]);
    expect(of(b).map((e) => [e.event, e.identity?.project])).toEqual([
      ['secret.denied', `${HOST}/proj-b`],
    ]);
  });

  it('the shipped kit: status-page-deploy runs in post after a push and succeeds through the broker', async () => {
    const s = await stack();
    const pushed = Date.now();
    await commitFiles(
      path.join(s.reposDir, 'kit'),
      { 'CHANGES.txt': `a change pushed at ${new Date(pushed).toISOString()}\n` },
      'a change that moves master',
    );
    const build = await s.nextBuild('status-page-deploy', pushed, BUILD_WAIT);
    expect(build.pipeline).toBe('post');
    await expectResult(s, build, 'SUCCESS');
    const events = (await s.audit()).filter((e) => e.identity?.build === build.uuid);
    expect(events.map((e) => e.event)).toEqual(['secret.issued', 'build.revoked']);
    expect(events[0]?.secrets?.map((x) => x.name).sort()).toEqual([
      'project-deploy-key',
      'status-page-db',
    ]);
    expect(events[0]?.identity?.project).toBe(`${HOST}/kit`);
    const errors = (await s.api('/config-errors')) as unknown[];
    expect(errors).toEqual([]);
  });

  it("after a rotation of Zuul's signing keys the next job succeeds (default key-set settings)", async () => {
    const s = await stack();
    // The broker has verified tokens signed with the current key (the cases above).
    const before = (await s.api('/builds?job_name=zsb-granted&result=SUCCESS&limit=1')) as Build[];
    expect(before.length, 'a successful build before the rotation').toBe(1);
    const kids = async () => {
      const res = await fetch(`${s.webUrl}/oidc/jwks`);
      const jwks = (await res.json()) as { keys: { kid: string }[] };
      return jwks.keys.map((k) => k.kid).sort();
    };
    const oldKids = await kids();
    await s.rotateSigningKeys();
    const rotated = Date.now();
    const newKids = await kids();
    expect(newKids.length, `key set after rotation: ${newKids.join(', ')}`).toBe(
      oldKids.length + 1,
    );
    // A few seconds' margin for the executor's cache of the key store (a ZooKeeper watch).
    const after = rotated + 3000;
    const [granted, revoke] = await Promise.all([
      s.nextBuild('zsb-granted', after, BUILD_WAIT),
      s.nextBuild('zsb-revoke', after, BUILD_WAIT),
    ]);
    await expectResult(s, granted, 'SUCCESS');
    await expectResult(s, revoke, 'SUCCESS');
    // The executor signed with the new key at once, and the broker accepted it.
    const added = newKids.filter((k) => !oldKids.includes(k));
    expect((await runToken(s, revoke)).header.kid).toBe(added[0]);
  });

  it('no secret value in job output, Zuul logs, ZooKeeper data, the Zuul database or the broker logs', async () => {
    const s = await stack();
    // Zuul's own job tokens (those the zsb-revoke builds left) are canaries too.
    for (const file of await readdir(s.outDir)) {
      if (file.endsWith('-run.jwt'))
        registerToken(await readFile(path.join(s.outDir, file), 'utf8'));
    }
    const outputs = await s.outputs();
    const jobOutputs = outputs.filter((o) => o.kind.startsWith('job-output.'));
    expect(jobOutputs.length, 'job-output.txt and .json of the builds').toBeGreaterThanOrEqual(10);
    expect(outputs.find((o) => o.kind === 'ZooKeeper znodes')?.text ?? '').toMatch(/"path"/);
    expect(outputs.find((o) => o.kind === 'Zuul database rows')?.text ?? '').toMatch(/zuul_build/);
    // Every text goes to the whole-run scan (test/support/canary-global-setup.ts) too.
    for (const o of outputs) captureText(o.kind, o.text);
    const dir = process.env[LOG_DIR_ENV];
    expect(dir, 'the canary run directory').toBeTruthy();
    const canaries = readCanaries(String(dir)).map((c) => c.value);
    expect(canaries.length).toBeGreaterThan(0);
    // Names where a canary was found, never the value itself.
    const leaks = outputs
      .filter((o) => o.text.includes(CANARY_PREFIX) || canaries.some((c) => o.text.includes(c)))
      .map((o) => o.kind);
    expect(leaks, 'outputs that contain a secret value or token of the run').toEqual([]);
  }, 300000);
});
