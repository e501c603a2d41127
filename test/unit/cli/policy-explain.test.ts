import { describe, expect, it } from 'vitest';
import { compileAclPolicy } from '../../../src/policy/compile.js';
import { explain, grantWarnings } from '../../../src/policy/explain.js';
import type { PolicySubject } from '../../../src/policy/types.js';
import { policySetFrom } from '../../support/app.js';

const SET = policySetFrom(`
secrets:
  clouds: { kv: { mount: secret, path: zuul/scs/clouds } }
  deploy: { kv: { mount: secret, path: "zuul/{tenant}/{project}/deploy" } }
  orphan: { kv: { mount: secret, path: zuul/orphan } }
grants:
  - name: nightly
    match: { tenant: scs, project: github.com/org/repo, pipeline: [periodic-daily] }
    allow: [clouds]
    ttl: 10m
  - name: nightly-long
    match: { tenant: scs, pipeline: periodic-daily, job: "nightly-*" }
    allow: [clouds]
    ttl: 30m
  - name: deploy-anywhere
    match: { job: "*-deploy" }
    allow: [deploy]
  - name: open-pipeline
    match: { tenant: "s*", project: "github.com/**", pipeline: ["post", "gate"] }
    allow: [deploy]
`);

const SUBJECT: PolicySubject = {
  issuer: 'https://zuul.example.org',
  tenant: 'scs',
  project: 'github.com/org/repo',
  secret: 'openbao-id',
  pipeline: 'periodic-daily',
  job: 'nightly-check',
  playbook: 'github.com/org/repo/playbooks/run.yaml',
  build: 'a'.repeat(32),
};

describe('policy explain', () => {
  it('names each grant that matches and the first field that fails for the others', () => {
    const e = explain(SET, SUBJECT);
    expect(e.grants.map((g) => [g.name, g.matched, g.failedField])).toEqual([
      ['nightly', true, null],
      ['nightly-long', true, null],
      ['deploy-anywhere', false, 'job'],
      ['open-pipeline', false, 'pipeline'],
    ]);
  });

  it('gives per secret the decision, the deciding (most permissive) grant and TTL, or why not', () => {
    const e = explain(SET, SUBJECT, ['clouds', 'deploy', 'orphan', 'unknown']);
    expect(e.secrets).toEqual({
      clouds: { decision: 'allow', grant: 'nightly-long', ttl: 1800, wrap: 'optional' },
      deploy: {
        decision: 'deny',
        grant: null,
        ttl: null,
        reason: 'no grant that allows this secret matches this identity',
      },
      orphan: { decision: 'deny', grant: null, ttl: null, reason: 'no grant allows this secret' },
      unknown: {
        decision: 'deny',
        grant: null,
        ttl: null,
        reason: 'no policy defines this secret',
      },
    });
  });

  it('shows the ready file a secret is delivered with, without its template text', () => {
    const set = policySetFrom(`
secrets:
  clouds: { kv: { mount: secret, path: zuul/scs/clouds } }
  robot:
    kv: { mount: secret, path: zuul/scs/robot, keys: [user, token] }
    render: { format: docker-config.json, registry: registry.scs.community, fields: { username: user, password: token } }
  settings:
    kv: { mount: secret, path: zuul/scs/settings }
    render: { format: template, template: "user={{ user }}\\ntoken={{ token }}\\n" }
grants:
  - name: nightly
    match: { tenant: scs, pipeline: [periodic-daily] }
    allow: [clouds, robot, settings]
`);
    const e = explain(set, SUBJECT, ['robot', 'settings', 'clouds']);
    expect(e.secrets.robot).toMatchObject({
      decision: 'allow',
      file: {
        format: 'docker-config.json',
        summary:
          'docker-config.json (registry registry.scs.community, username from user, password from token)',
      },
    });
    expect(e.secrets.settings).toMatchObject({
      file: { format: 'template', summary: 'template of user, token' },
    });
    expect(e.secrets.clouds).not.toHaveProperty('file');
  });

  it('warns about pre-merge reach, weak narrowing and cross-tenant globs', () => {
    const kinds = (name: string) => {
      const grant = SET.grants.find((g) => g.name === name);
      if (!grant) throw new Error(name);
      return grantWarnings(grant).map((w) => w.kind);
    };
    expect(kinds('nightly')).toEqual([]);
    expect(kinds('deploy-anywhere')).toEqual(['pre-merge', 'weak-narrowing', 'cross-tenant']);
    expect(kinds('open-pipeline')).toEqual(['pre-merge', 'cross-tenant']);
  });

  it('reaches no prototype with a hostile name', () => {
    const e = explain(SET, SUBJECT, ['__proto__']);
    expect(Object.getPrototypeOf(e.secrets)).toBe(Object.prototype);
    expect(Object.keys(e.secrets)).toEqual(['__proto__']);
  });
});

describe('policy compile', () => {
  const hcl = compileAclPolicy(SET);

  it('grants read on exactly the referenced KV paths, the undo path and cluster readiness', () => {
    const paths = [...hcl.matchAll(/^path "([^"]+)"/gm)].map((m) => m[1]);
    expect(paths).toEqual([
      'secret/data/zuul/scs/clouds',
      'secret/data/zuul/+/+/deploy',
      'secret/data/zuul/+/+/+/deploy',
      'secret/data/zuul/+/+/+/+/deploy',
      'secret/data/zuul/+/+/+/+/+/deploy',
      'secret/data/zuul/+/+/+/+/+/+/deploy',
      'secret/data/zuul/+/+/+/+/+/+/+/deploy',
      'secret/data/zuul/orphan',
      'auth/token/revoke-accessor',
      'auth/token/lookup-self',
      'sys/storage/raft/autopilot/state',
      'auth/token/renew-self',
    ]);
    expect(hcl).not.toMatch(/"\*"|\/\*"/);
    expect(hcl).not.toContain('"list"');
  });
});
