/**
 * Grants on build facts (buildProject, branch, ref; ADR 0014): refused for issuers without
 * a build binding (the loader with the configuration's issuers, and `zsb policy check
 * --config`), matched only when the binding supplied the fact, settable in policy tests
 * and shown by `zsb policy explain`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decide, matchGrant } from '../../../src/policy/decide.js';
import { explain } from '../../../src/policy/explain.js';
import { formatProblem, type IssuerBindings, parsePolicyFiles } from '../../../src/policy/load.js';
import { parsePolicyTests, runPolicyTests } from '../../../src/policy/test-runner.js';
import type { PolicySet, PolicySubject } from '../../../src/policy/types.js';
import { runZsb as zsb } from '../../support/cli.js';

const BOUND = 'https://zuul.example.org';
const UNBOUND = 'https://zuul.other.example.org';

const POLICY = `secrets:
  deploy-key: { kv: { mount: secret, path: zuul/status-page/deploy } }
  release-key: { kv: { mount: secret, path: zuul/status-page/release } }
grants:
  - name: deploy-main
    match:
      issuer: ${BOUND}
      tenant: scs
      project: github.com/SovereignCloudStack/zuul-config
      secret: openbao-id
      pipeline: post
      job: status-page-deploy
      buildProject: github.com/SovereignCloudStack/status-page
      branch: [main, "stable/*"]
    allow: [deploy-key]
  - name: release-tags
    match:
      issuer: ${BOUND}
      tenant: scs
      pipeline: release
      ref: "refs/tags/v*"
    allow: [release-key]
`;

function load(text: string, issuers?: IssuerBindings) {
  return parsePolicyFiles([{ name: 'p.yaml', text }], {
    maxTtlSeconds: 3600,
    ...(issuers === undefined ? {} : { issuers }),
  });
}

function setOf(text: string): PolicySet {
  const result = load(text, { configured: [BOUND], bound: new Set([BOUND]) });
  if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
  return result.set;
}

const SUBJECT: PolicySubject = {
  issuer: BOUND,
  tenant: 'scs',
  project: 'github.com/SovereignCloudStack/zuul-config',
  secret: 'openbao-id',
  pipeline: 'post',
  job: 'status-page-deploy',
  playbook: 'github.com/SovereignCloudStack/zuul-config/playbooks/deploy.yaml',
  build: 'a'.repeat(32),
  buildProject: 'github.com/SovereignCloudStack/status-page',
  branch: 'main',
  ref: 'refs/heads/main',
};

describe('loading', () => {
  it('accepts grants on build facts when every issuer they reach is bound', () => {
    expect(load(POLICY, { configured: [BOUND, UNBOUND], bound: new Set([BOUND]) }).ok).toBe(true);
  });

  it('refuses a grant on build facts that can reach an issuer without a binding, at the field', () => {
    const text = POLICY.replace(
      `      issuer: ${BOUND}\n      tenant: scs\n      project`,
      '      tenant: scs\n      project',
    );
    const result = load(text, { configured: [BOUND, UNBOUND], bound: new Set([BOUND]) });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems.map(formatProblem)).toEqual([
        `p.yaml:12:21: grants[0].match.buildProject: buildProject is known only through the build binding, but issuer '${UNBOUND}' has none configured (set buildBinding on it, or pin match.issuer to bound issuers)`,
      ]);
    }
  });

  it('refuses a grant pinned to an unbound issuer', () => {
    const result = load(POLICY, { configured: [BOUND], bound: new Set() });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.map((p) => p.line)).toEqual([13, 21]);
  });

  it('cannot apply the rule without the configuration (the CLI then prints a note)', () => {
    expect(load(POLICY).ok).toBe(true);
  });
});

describe('deciding', () => {
  const set = setOf(POLICY);
  const grant = (name: string) => set.grants.find((g) => g.name === name);

  it('allows the pinned project and branch, and a branch the pattern admits', () => {
    expect(decide(set, SUBJECT, ['deploy-key']).allowed).toBe(true);
    expect(decide(set, { ...SUBJECT, branch: 'stable/2026.1' }, ['deploy-key']).allowed).toBe(true);
  });

  it('tells apart builds that share one token secret: another project, another branch', () => {
    const g = grant('deploy-main');
    if (g === undefined) throw new Error('no grant');
    expect(
      matchGrant(g, { ...SUBJECT, buildProject: 'github.com/SovereignCloudStack/standards' }),
    ).toEqual({
      matched: false,
      failedField: 'buildProject',
    });
    expect(matchGrant(g, { ...SUBJECT, branch: 'feature' })).toEqual({
      matched: false,
      failedField: 'branch',
    });
  });

  it('a fact the binding did not supply matches nothing, not even **', () => {
    const { buildProject: _p, branch: _b, ref: _r, ...unbound } = SUBJECT;
    expect(decide(set, unbound, ['deploy-key']).allowed).toBe(false);
    const wide = setOf(POLICY.replace('branch: [main, "stable/*"]', 'branch: "**"'));
    expect(decide(wide, unbound, ['deploy-key']).allowed).toBe(false);
    expect(decide(wide, SUBJECT, ['deploy-key']).allowed).toBe(true);
  });

  it('matches refs with patterns (release tags)', () => {
    const release = { ...SUBJECT, pipeline: 'release', ref: 'refs/tags/v1.2.0' };
    expect(decide(set, release, ['release-key']).allowed).toBe(true);
    expect(decide(set, { ...release, ref: 'refs/heads/v1' }, ['release-key']).allowed).toBe(false);
  });

  it('explain names the build fact that failed', () => {
    const e = explain(set, { ...SUBJECT, branch: 'feature' }, ['deploy-key']);
    expect(e.grants.find((g) => g.name === 'deploy-main')).toMatchObject({
      matched: false,
      failedField: 'branch',
    });
    expect(e.identity.branch).toBe('feature');
  });
});

describe('policy tests', () => {
  it('cases set the build facts, and a case without them is denied', () => {
    const identity = `{ tenant: scs, project: github.com/SovereignCloudStack/zuul-config, secret: openbao-id, pipeline: post, job: status-page-deploy`;
    const loaded = parsePolicyTests([
      {
        name: 'tests/t.yaml',
        text: `- name: main deploys
  identity: ${identity}, buildProject: github.com/SovereignCloudStack/status-page, branch: main }
  allow: [deploy-key]
- name: a feature branch does not
  identity: ${identity}, buildProject: github.com/SovereignCloudStack/status-page, branch: feature }
  deny: [deploy-key]
- name: without the binding nothing
  identity: ${identity} }
  deny: [deploy-key]
- name: wrongly expected
  identity: ${identity}, branch: feature }
  allow: [deploy-key]
`,
      },
    ]);
    if (!loaded.ok) throw new Error(loaded.problems.map(formatProblem).join('\n'));
    const outcomes = runPolicyTests(setOf(POLICY), loaded.cases);
    expect(outcomes.map((o) => o.passed)).toEqual([true, true, true, false]);
  });
});

describe('zsb policy check and explain', () => {
  let dir: string;
  const config = (binding: boolean) => `issuers:
  - issuer: ${BOUND}
    audience: https://secrets.example.org
${binding ? '    buildBinding: {}\n' : ''}openbao:
  address: http://127.0.0.1:8200
  auth: { method: token, tokenFile: /nonexistent }
`;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'zsb-build-facts-'));
    await mkdir(path.join(dir, 'policies'));
    await writeFile(path.join(dir, 'policies', 'p.yaml'), POLICY);
    await writeFile(path.join(dir, 'bound.yaml'), config(true));
    await writeFile(path.join(dir, 'unbound.yaml'), config(false));
    await writeFile(
      path.join(dir, 'claims.json'),
      JSON.stringify({
        iss: BOUND,
        sub: 'secret:scs/github.com/SovereignCloudStack/zuul-config/openbao-id',
        tenant: 'scs',
        'job-name': 'status-page-deploy',
        pipeline: 'post',
        playbook: 'github.com/SovereignCloudStack/zuul-config/playbooks/deploy.yaml',
        'build-uuid': 'b'.repeat(32),
      }),
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('check refuses the grants when the configured issuer has no binding, accepts them when it has', async () => {
    const policies = path.join(dir, 'policies');
    const check = (config: string) =>
      zsb('policy', 'check', policies, '--config', path.join(dir, config));
    const refused = await check('unbound.yaml');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'p.yaml:13:21: grants[0].match.buildProject: buildProject is known only through the build binding',
    );
    const accepted = await check('bound.yaml');
    expect(accepted.code).toBe(0);
    const noConfig = await zsb('policy', 'check', policies);
    expect(noConfig.code).toBe(0);
    expect(noConfig.stderr).toContain("note: grant 'deploy-main' matches buildProject");
  }, 30000);

  it('explain takes the build facts and shows them', async () => {
    const args = [
      'policy',
      'explain',
      '--claims',
      path.join(dir, 'claims.json'),
      '--policies',
      path.join(dir, 'policies'),
    ];
    const main = await zsb(
      ...args,
      '--build-project',
      'github.com/SovereignCloudStack/status-page',
      '--branch',
      'main',
      'deploy-key',
    );
    expect(main.stdout).toMatch(/buildProject +github\.com\/SovereignCloudStack\/status-page/);
    expect(main.stdout).toMatch(/allow +deploy-key +by grant deploy-main/);
    const none = await zsb(...args, '--json', 'deploy-key');
    const json = JSON.parse(none.stdout) as { grants: { name: string; failedField: string }[] };
    expect(json.grants.find((g) => g.name === 'deploy-main')?.failedField).toBe('buildProject');
  }, 30000);
});
