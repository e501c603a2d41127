/**
 * `zsb policy check` and `zsb policy explain` warn (file:line:col, code
 * `config-project-identity`) about a grant that reaches a config project's token secret by
 * project alone; the config projects come from the policy directory's `zuul:` section or
 * from zuul-web (`--zuul-url`, a loopback server with Zuul's response shape).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runZsb as zsb } from '../../support/cli.js';

const POLICY = `secrets:
  deploy-key: { kv: { mount: secret, path: "zuul/{tenant}/{project}/deploy" } }
  admin: { kv: { mount: secret, path: zuul/e2e/admin } }
grants:
  - name: every-project-deploys
    match:
      tenant: e2e
      project: localhost/zuul-config
      secret: broker-id
    allow: [admin]
  - name: pinned-deploy
    match:
      tenant: e2e
      project: localhost/zuul-config
      secret: broker-id
      pipeline: post
      job: demo-deploy
      playbook: localhost/zuul-config/playbooks/deploy.yaml
    allow: [deploy-key]
`;
const ZUUL_SECTION = `zuul:
  configProjects:
    e2e: [localhost/zuul-config]
`;

let dir: string;
let server: Server;
let zuulUrl: string;

async function policyDir(name: string, files: Record<string, string>): Promise<string> {
  const target = path.join(dir, name);
  await rm(target, { recursive: true, force: true });
  await mkdir(target);
  for (const [file, text] of Object.entries(files)) await writeFile(path.join(target, file), text);
  return target;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-policy-warnings-'));
  server = createServer((req, res) => {
    if (req.url === '/api/tenant/e2e/projects') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify([
          {
            name: 'zuul-config',
            canonical_name: 'localhost/zuul-config',
            connection_name: 'local',
            type: 'config',
          },
          {
            name: 'demo',
            canonical_name: 'localhost/demo',
            connection_name: 'local',
            type: 'untrusted',
          },
        ]),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  zuulUrl = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

const WARNING =
  /^p\.yaml:8:16: warning config-project-identity: grant 'every-project-deploys' matches the token secret of config project 'e2e\/localhost\/zuul-config' by project without job, playbook, pipeline: /m;
/** Pinned, but `{project}` is the config project for every job using its token secret. */
const PLACEHOLDER_WARNING =
  /^p\.yaml:14:16: warning config-project-identity: grant 'pinned-deploy' allows 'deploy-key', whose path uses \{project\}, to the token secret of config project 'e2e\/localhost\/zuul-config': /m;

// Each case starts the CLI (tsx) once or twice: seconds on a busy machine.
const SLOW = { timeout: 60_000 };

describe('zsb policy check', SLOW, () => {
  it("warns with file:line:col from the directory's zuul: section, and still exits 0", async () => {
    const policies = await policyDir('with-section', {
      'p.yaml': POLICY,
      'zuul.yaml': ZUUL_SECTION,
    });
    const run = await zsb('policy', 'check', policies);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(WARNING);
    expect(run.stderr).toMatch(PLACEHOLDER_WARNING);
    expect(run.stderr.trim().split('\n')).toHaveLength(2);
    expect(run.stdout).toContain('ok (2 secrets, 2 grants, 0 rotations in 2 files, 2 warnings)');
  });

  it('warns when an application credential grace is shorter than the ttl of a grant allowing it', async () => {
    const policies = await policyDir('short-grace', {
      'p.yaml': [
        'secrets:',
        '  cloud: { kv: { mount: secret, path: zuul/scs/cloud } }',
        '  rotator: { kv: { mount: secret, path: zsb/keystone/scs } }',
        'grants:',
        '  - name: nightly',
        '    match: { tenant: scs, project: p, secret: s, pipeline: periodic, job: check }',
        '    allow: [cloud]',
        '    ttl: 1h',
        'rotations:',
        '  - secret: cloud',
        '    every: 7d',
        '    target: { applicationCredential: { rotator: rotator, grace: 10m } }',
        '',
      ].join('\n'),
    });
    const run = await zsb('policy', 'check', policies);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe(
      "p.yaml:10:5: warning short-grace: rotation 'cloud' grace 10m is shorter than the ttl 1h of grant 'nightly': a job that fetched the previous credential just before a rotation loses it while it runs; set grace to at least 1h\n",
    );
    expect(run.stdout).toContain('ok (2 secrets, 1 grants, 1 rotations in 1 files, 1 warnings)');
  });

  it('says nothing when it does not know which projects are config projects', async () => {
    const policies = await policyDir('no-section', { 'p.yaml': POLICY });
    const run = await zsb('policy', 'check', policies);
    expect(run).toMatchObject({ code: 0, stderr: '' });
  });

  it('learns the config projects from zuul-web with --zuul-url', async () => {
    const policies = await policyDir('from-zuul-web', { 'p.yaml': POLICY });
    const run = await zsb('policy', 'check', policies, '--zuul-url', zuulUrl);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(WARNING);
  });

  it('refuses a --zuul-url that is not https or loopback, and a wrong root', async () => {
    const policies = await policyDir('bad-url', { 'p.yaml': POLICY });
    const plain = await zsb('policy', 'check', policies, '--zuul-url', 'http://zuul.example.org');
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('--zuul-url must be');
    const wrong = await zsb('policy', 'check', policies, '--zuul-url', `${zuulUrl}/zuul`);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("is the URL zuul-web's root?");
  });
});

describe('zsb policy explain', SLOW, () => {
  it('lists the warning with its code and location in --json', async () => {
    const policies = await policyDir('explain', { 'p.yaml': POLICY, 'zuul.yaml': ZUUL_SECTION });
    const claims = path.join(dir, 'claims.json');
    await writeFile(
      claims,
      JSON.stringify({
        iss: 'http://127.0.0.1:9000',
        sub: 'secret:e2e/localhost/zuul-config/broker-id',
        tenant: 'e2e',
        'job-name': 'demo-deploy',
        pipeline: 'post',
        playbook: 'localhost/zuul-config/playbooks/deploy.yaml',
        'build-uuid': 'a'.repeat(32),
      }),
    );
    const run = await zsb(
      'policy',
      'explain',
      '--claims',
      claims,
      '--policies',
      policies,
      '--json',
    );
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as { warnings: Array<Record<string, string>> };
    const warnings = out.warnings.filter((w) => w.kind === 'config-project-identity');
    expect(warnings.map((w) => [w.grant, w.location])).toEqual([
      ['every-project-deploys', 'p.yaml:8:16'],
      ['pinned-deploy', 'p.yaml:14:16'],
    ]);
  });
});
