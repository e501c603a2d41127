/**
 * The `config-project-identity` warning: `sub` names the project that defines the token
 * secret, so a grant on a config project's token secret that pins none (or only some) of
 * job, playbook and pipeline lets every job using that secret, for every project, in.
 */
import { describe, expect, it } from 'vitest';
import { configProjectWarnings } from '../../../src/policy/config-projects.js';
import { parsePolicyFiles } from '../../../src/policy/load.js';
import type { PolicySet, ZuulTenantFacts } from '../../../src/policy/types.js';
import { mergeZuulFacts } from '../../../src/policy/zuul-section.js';

function load(text: string): PolicySet {
  const result = parsePolicyFiles([{ name: 'p.yaml', text }], { maxTtlSeconds: 3600 });
  if (!result.ok) throw new Error(result.problems.map((p) => p.message).join('; '));
  return result.set;
}

/** The problems of one policy file, as `line:column: message`; fails when it loads. */
function problemsOf(lines: readonly string[]): string[] {
  const result = parsePolicyFiles([{ name: 'z.yaml', text: lines.join('\n') }], {
    maxTtlSeconds: 3600,
  });
  expect(result.ok).toBe(false);
  return result.ok ? [] : result.problems.map((p) => `${p.line}:${p.column}: ${p.message}`);
}

const FACTS: ZuulTenantFacts = {
  configProjects: new Map([
    ['scs', new Set(['github.com/SovereignCloudStack/zuul-config'])],
    ['other', new Set(['opendev.org/other/project-config'])],
  ]),
};

const grant = (match: string) => `
secrets:
  s: { kv: { mount: secret, path: x } }
grants:
  - name: g
    match: ${match}
    allow: [s]
`;

describe('config-project-identity', () => {
  it.each<[string, string, string[] | null]>([
    [
      'project alone',
      '{ tenant: scs, project: github.com/SovereignCloudStack/zuul-config }',
      ['job', 'playbook', 'pipeline'],
    ],
    [
      'project and secret',
      '{ tenant: scs, project: github.com/SovereignCloudStack/zuul-config, secret: openbao-id }',
      ['job', 'playbook', 'pipeline'],
    ],
    [
      'a glob that covers it',
      '{ tenant: scs, project: "github.com/SovereignCloudStack/**", pipeline: post }',
      ['job', 'playbook'],
    ],
    [
      'no project at all',
      '{ tenant: scs, secret: openbao-id, job: deploy }',
      ['playbook', 'pipeline'],
    ],
    ['no tenant: every tenant', '{ project: "**", pipeline: post, job: x, playbook: "**" }', null],
    [
      'pinned job, playbook and pipeline',
      '{ tenant: scs, project: github.com/SovereignCloudStack/zuul-config, pipeline: post, job: deploy, playbook: "github.com/SovereignCloudStack/zuul-config/playbooks/deploy.yaml" }',
      null,
    ],
    [
      'an untrusted project',
      '{ tenant: scs, project: github.com/SovereignCloudStack/standards }',
      null,
    ],
    [
      'another tenant',
      '{ tenant: third, project: github.com/SovereignCloudStack/zuul-config }',
      null,
    ],
  ])('%s', (_what, match, missing) => {
    const [g] = load(grant(match)).grants;
    if (g === undefined) throw new Error('no grant');
    const warnings = configProjectWarnings(g, FACTS);
    if (missing === null) {
      expect(warnings).toEqual([]);
      return;
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.kind).toBe('config-project-identity');
    expect(warnings[0]?.message).toContain(`without ${missing.join(', ')}:`);
    expect(warnings[0]?.message).toContain("'scs/github.com/SovereignCloudStack/zuul-config'");
  });

  it("points at the grant's project field, or at the grant without one", () => {
    const set = load(`
grants:
  - name: by-project
    match:
      tenant: scs
      project: github.com/SovereignCloudStack/zuul-config
    allow: [s]
  - name: by-tenant
    match: { tenant: scs }
    allow: [s]
secrets:
  s: { kv: { mount: secret, path: x } }
`);
    const locations = set.grants
      .flatMap((g) => configProjectWarnings(g, FACTS))
      .map((w) => w.location);
    expect(locations).toEqual([
      { file: 'p.yaml', line: 6, column: 16 },
      { file: 'p.yaml', line: 8, column: 5 },
    ]);
  });

  it('names secrets whose {project} path would be the config project, even in a pinned grant', () => {
    const set = load(`
secrets:
  per-project: { kv: { mount: secret, path: "zuul/{tenant}/{project}/deploy" } }
  literal: { kv: { mount: secret, path: zuul/scs/admin } }
grants:
  - name: pinned
    match:
      tenant: scs
      project: github.com/SovereignCloudStack/zuul-config
      pipeline: post
      job: deploy
      playbook: github.com/SovereignCloudStack/zuul-config/playbooks/deploy.yaml
    allow: [per-project, literal]
  - name: own-projects
    match: { tenant: scs, project: github.com/SovereignCloudStack/standards, pipeline: post }
    allow: [per-project]
`);
    const messages = set.grants.flatMap((g) =>
      configProjectWarnings(g, FACTS, set.secrets).map((w) => `${w.grant}: ${w.message}`),
    );
    expect(messages).toEqual([
      expect.stringMatching(
        /^pinned: allows 'per-project', whose path uses \{project\}, to the token secret of config project 'scs\/github.com\/SovereignCloudStack\/zuul-config': /,
      ),
    ]);
  });

  it('says nothing without facts about config projects', () => {
    const [g] = load(grant('{ tenant: scs }')).grants;
    if (g === undefined) throw new Error('no grant');
    expect(configProjectWarnings(g, undefined)).toEqual([]);
  });
});

describe('the zuul: section of a policy file', () => {
  it('lists config projects per tenant, merged across files', () => {
    const result = parsePolicyFiles(
      [
        {
          name: 'a.yaml',
          text: 'zuul:\n  configProjects:\n    scs: [github.com/SovereignCloudStack/zuul-config]\n',
        },
        {
          name: 'b.yaml',
          text: 'zuul:\n  configProjects:\n    scs: [github.com/SovereignCloudStack/base-jobs]\n    e2e: [localhost/zuul-config]\n',
        },
      ],
      { maxTtlSeconds: 3600 },
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.set.zuul?.configProjects).toEqual(
      new Map([
        [
          'scs',
          new Set([
            'github.com/SovereignCloudStack/zuul-config',
            'github.com/SovereignCloudStack/base-jobs',
          ]),
        ],
        ['e2e', new Set(['localhost/zuul-config'])],
      ]),
    );
  });

  it('refuses patterns, bare names, unknown keys and bad tenants, at their line and column', () => {
    expect(
      problemsOf([
        'zuul:',
        '  configProjects:',
        '    scs: ["github.com/org/*", zuul-config, "a//b"]',
        '    "a/b": [localhost/x]',
        '  untrustedProjects: {}',
      ]),
    ).toEqual([expect.stringMatching(/^5:3: .*untrustedProjects/)]);
  });

  it('checks entries once the shape is right', () => {
    expect(
      problemsOf([
        'zuul:',
        '  configProjects:',
        '    scs: ["github.com/org/*", zuul-config, "a//b"]',
        '    "a/b": [localhost/x]',
      ]),
    ).toEqual([
      expect.stringMatching(/^3:11: .*'github.com\/org\/\*' is not a canonical project name/),
      expect.stringMatching(/^3:31: .*'zuul-config' is not a canonical project name/),
      expect.stringMatching(/^3:44: .*'a\/\/b' is not a canonical project name/),
      expect.stringMatching(/^4:12: .*tenant 'a\/b' is not a Zuul tenant name/),
    ]);
  });

  it('merges facts from the directory and from zuul-web', () => {
    expect(
      mergeZuulFacts(new Map([['scs', new Set(['a/b'])]]), new Map([['scs', new Set(['c/d'])]]))
        ?.configProjects,
    ).toEqual(new Map([['scs', new Set(['a/b', 'c/d'])]]));
    expect(mergeZuulFacts(undefined, new Map())).toBeUndefined();
  });
});
