import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allowedFor, decide, matchGrant } from '../../../src/policy/decide.js';
import { formatProblem, parsePolicyFiles } from '../../../src/policy/load.js';
import type {
  Decision,
  Grant,
  MatchField,
  PolicySet,
  PolicySubject,
  SecretDefinition,
  WrapMode,
} from '../../../src/policy/types.js';
import { MATCH_FIELDS } from '../../../src/policy/types.js';
import { referenceDecide } from './reference.js';

const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

function setOf(text: string, maxTtlSeconds = 3600): PolicySet {
  const result = parsePolicyFiles([{ name: 'p.yaml', text }], { maxTtlSeconds });
  if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
  return result.set;
}

const subject: PolicySubject = {
  issuer: 'https://zuul.example.org',
  tenant: 'scs',
  project: 'github.com/SovereignCloudStack/standards',
  secret: 'openbao-id',
  pipeline: 'post',
  job: 'scs-compliance-check',
  playbook: 'github.com/SovereignCloudStack/standards/playbooks/check.yaml',
  build: '5f1c0e6f3b1a4c7e9d2b8a6c4e0f1a2b',
};

const SECRETS = yaml(
  'secrets:',
  '  clouds: { kv: { mount: secret, path: zuul/clouds } }',
  '  deploy-key: { kv: { mount: secret, path: "zuul/{tenant}/{project}/deploy" } }',
  '  admin: { kv: { mount: secret, path: zuul/admin } }',
  '  defined-but-ungranted: { kv: { mount: secret, path: zuul/x } }',
);

const POLICY = setOf(
  SECRETS +
    yaml(
      'grants:',
      '  - name: compliance',
      '    match:',
      '      issuer: https://zuul.example.org',
      '      tenant: scs',
      '      project: github.com/SovereignCloudStack/standards',
      '      pipeline: [post, periodic-daily]',
      '      job: "scs-compliance-*"',
      '    allow: [clouds]',
      '    ttl: 15m',
      '  - name: deploy',
      '    match:',
      '      tenant: scs',
      '      project: "github.com/SovereignCloudStack/**"',
      '      job: "*-deploy"',
      '    allow: [deploy-key]',
      '  - name: org-wide',
      '    match:',
      '      project: "github.com/SovereignCloudStack/*"',
      '      pipeline: post',
      '    allow: [clouds]',
      '    ttl: 30m',
      '    wrap: required',
    ),
);

function allowedNames(d: Decision): string[] {
  return d.allowed ? [...d.secrets.keys()] : [];
}

describe('matchGrant', () => {
  const grant = POLICY.grants[0] as Grant;
  it.each<[Partial<PolicySubject>, MatchField | undefined]>([
    [{}, undefined],
    [{ issuer: 'https://other.example.org' }, 'issuer'],
    [{ tenant: 'other' }, 'tenant'],
    [{ project: 'github.com/SovereignCloudStack/other' }, 'project'],
    [{ pipeline: 'check' }, 'pipeline'],
    [{ job: 'other-job' }, 'job'],
    // the first failing field in MATCH_FIELDS order is reported
    [{ tenant: 'other', job: 'other-job' }, 'tenant'],
    [{ issuer: 'x', pipeline: 'gate' }, 'issuer'],
    // fields the grant does not list match anything
    [{ secret: 'anything', playbook: 'x.yaml' }, undefined],
  ])('%j → %s', (override, failedField) => {
    const result = matchGrant(grant, { ...subject, ...override });
    expect(result).toEqual(
      failedField === undefined ? { matched: true } : { matched: false, failedField },
    );
  });

  it('treats an absent issuer as any issuer', () => {
    const deploy = POLICY.grants[1] as Grant;
    const who = { ...subject, issuer: 'https://another-zuul.example.org', job: 'x-deploy' };
    expect(matchGrant(deploy, who)).toEqual({ matched: true });
  });

  it('fails closed on a hand-built grant with a pattern that does not compile', () => {
    const broken: Grant = { ...(POLICY.grants[1] as Grant), match: { job: ['bad**'] } };
    expect(matchGrant(broken, { ...subject, job: 'bad**' })).toEqual({
      matched: false,
      failedField: 'job',
    });
  });
});

describe('decide', () => {
  it.each<[string, Partial<PolicySubject>, string[], Decision | string[]]>([
    ['grants a matching request', {}, ['clouds'], ['clouds']],
    [
      'denies by default (no grant matches)',
      { tenant: 'other', project: 'github.com/Other/x' },
      ['clouds'],
      { allowed: false, denied: ['clouds'] },
    ],
    [
      'denies pre-merge pipelines not listed',
      { pipeline: 'check' },
      ['clouds'],
      { allowed: false, denied: ['clouds'] },
    ],
    [
      'denies a defined but ungranted name',
      {},
      ['defined-but-ungranted'],
      { allowed: false, denied: ['defined-but-ungranted'] },
    ],
    [
      'denies an undefined name the same way',
      {},
      ['no-such-secret'],
      { allowed: false, denied: ['no-such-secret'] },
    ],
    [
      'is all or nothing',
      {},
      ['clouds', 'admin', 'no-such-secret', 'clouds'],
      { allowed: false, denied: ['admin', 'no-such-secret'] },
    ],
    [
      '`*` does not cross `/`: a nested project misses the org-wide grant',
      { project: 'github.com/SovereignCloudStack/a/b', job: 'scs-compliance-x' },
      ['clouds'],
      { allowed: false, denied: ['clouds'] },
    ],
    [
      '`**` crosses `/`: a nested project matches the deploy grant',
      { project: 'github.com/SovereignCloudStack/a/b', job: 'x-deploy', pipeline: 'promote' },
      ['deploy-key'],
      ['deploy-key'],
    ],
    [
      'a project with a `..` segment never matches a wildcard',
      { project: 'github.com/SovereignCloudStack/../Other', job: 'x-deploy' },
      ['deploy-key'],
      { allowed: false, denied: ['deploy-key'] },
    ],
    ['an empty request is vacuously allowed', {}, [], []],
  ])('%s', (_what, override, names, expected) => {
    const decision = decide(POLICY, { ...subject, ...override }, names);
    if (Array.isArray(expected)) {
      expect(decision.allowed).toBe(true);
      expect(allowedNames(decision)).toEqual(expected);
    } else {
      expect(decision).toEqual(expected);
    }
  });

  it('makes undefined and ungranted names indistinguishable', () => {
    const ungranted = decide(POLICY, subject, ['defined-but-ungranted']);
    const undefinedName = decide(POLICY, subject, ['not-defined-anywhere']);
    const shape = (d: Decision) =>
      d.allowed ? 'allowed' : `${Object.keys(d).sort().join(',')}:${d.denied.length}`;
    expect(shape(ungranted)).toBe(shape(undefinedName));
    expect(Object.keys(ungranted).sort()).toEqual(Object.keys(undefinedName).sort());
  });

  it('picks the most permissive grant: largest ttl, wrap required only if all require it', () => {
    const decision = decide(POLICY, subject, ['clouds']);
    expect(decision.allowed).toBe(true);
    if (!decision.allowed) return;
    const granted = decision.secrets.get('clouds');
    expect(granted).toMatchObject({ grant: 'org-wide', ttlSeconds: 1800, wrap: 'optional' });
    expect(granted?.secret.name).toBe('clouds');
    // With the compliance grant out of the way, only the wrap-required grant allows it.
    const onlyRequired = decide(POLICY, { ...subject, job: 'other' }, ['clouds']);
    expect(onlyRequired.allowed && onlyRequired.secrets.get('clouds')).toMatchObject({
      grant: 'org-wide',
      ttlSeconds: 1800,
      wrap: 'required',
    });
  });

  it.each<[WrapMode[], WrapMode]>([
    [['required'], 'required'],
    [['required', 'required'], 'required'],
    [['never'], 'never'],
    [['never', 'never'], 'never'],
    [['optional'], 'optional'],
    [['required', 'optional'], 'optional'],
    [['never', 'optional'], 'optional'],
    [['required', 'never'], 'optional'],
  ])('combines wrap modes %j → %s', (modes, expected) => {
    const grants = modes.map((wrap, i) =>
      yaml(
        `  - name: g${i}`,
        '    match: { tenant: scs }',
        '    allow: [clouds]',
        `    wrap: ${wrap}`,
      ),
    );
    const set = setOf(SECRETS + yaml('grants:') + grants.join(''));
    const decision = decide(set, subject, ['clouds']);
    expect(decision.allowed && decision.secrets.get('clouds')?.wrap).toBe(expected);
  });

  it('breaks ttl ties by load order and defaults ttl to the global maximum', () => {
    const set = setOf(
      SECRETS +
        yaml(
          'grants:',
          '  - name: first',
          '    match: { tenant: scs }',
          '    allow: [clouds]',
          '    ttl: 10m',
          '  - name: second',
          '    match: { tenant: scs }',
          '    allow: [clouds]',
          '    ttl: 600',
          '  - name: default-ttl',
          '    match: { tenant: scs }',
          '    allow: [admin]',
        ),
      7200,
    );
    const decision = decide(set, subject, ['clouds', 'admin']);
    expect(decision.allowed).toBe(true);
    if (!decision.allowed) return;
    expect(decision.secrets.get('clouds')).toMatchObject({ grant: 'first', ttlSeconds: 600 });
    expect(decision.secrets.get('admin')).toMatchObject({ grant: 'default-ttl', ttlSeconds: 7200 });
  });
});

describe('allowedFor', () => {
  it('lists matching grants and their defined secrets, sorted', () => {
    expect(allowedFor(POLICY, subject)).toEqual({
      secrets: ['clouds'],
      grants: ['compliance', 'org-wide'],
    });
    expect(allowedFor(POLICY, { ...subject, job: 'status-deploy' })).toEqual({
      secrets: ['clouds', 'deploy-key'],
      grants: ['deploy', 'org-wide'],
    });
    const stranger = { ...subject, tenant: 'other', project: 'github.com/Other/x' };
    expect(allowedFor(POLICY, stranger)).toEqual({ secrets: [], grants: [] });
  });
});

describe('decide against the naive reference (property)', () => {
  const NAMES = ['s0', 's1', 's2', 's3', 's4'];
  const segment = fc.constantFrom('a', 'b', 'ab', '*', 'a*', '*b');
  const pattern = fc
    .array(fc.oneof(segment, fc.constant('**')), { minLength: 1, maxLength: 3 })
    .map((parts) => parts.join('/'))
    .filter((p) => p !== '');
  const value = fc
    .array(fc.constantFrom('a', 'b', 'ab', 'a', 'b', 'ba', '..', ''), {
      minLength: 1,
      maxLength: 3,
    })
    .map((parts) => parts.join('/'));
  // Few fields per grant, so that a fair share of random grants match at all.
  const matchFor = fc
    .subarray([...MATCH_FIELDS], { maxLength: 2 })
    .chain((fields) =>
      fc
        .tuple(
          ...fields.map((f) =>
            (f === 'issuer'
              ? fc.constantFrom<string[]>(['i1'], ['i2'], ['i1', 'i2'])
              : fc.array(pattern, { minLength: 1, maxLength: 2 })
            ).map((patterns): [MatchField, string[]] => [f, patterns]),
          ),
        )
        .map((entries): Partial<Record<MatchField, string[]>> => Object.fromEntries(entries)),
    );
  const grant = (i: number) =>
    fc
      .record({
        match: matchFor,
        allow: fc.subarray(NAMES, { minLength: 1 }),
        ttlSeconds: fc.constantFrom(60, 600, 3600),
        wrap: fc.constantFrom<WrapMode>('optional', 'required', 'never'),
      })
      .map(
        (g): Grant => ({
          name: `g${i}`,
          ...g,
          location: { file: 'p.yaml', line: i + 1, column: 1 },
        }),
      );
  const policySet = fc
    .tuple(fc.subarray(NAMES), fc.array(fc.nat(), { maxLength: 6 }))
    .chain(([defined, grantSeeds]) =>
      fc.tuple(...grantSeeds.map((_, i) => grant(i))).map(
        (grants): PolicySet => ({
          secrets: new Map(
            defined.map((name): [string, SecretDefinition] => [
              name,
              {
                name,
                source: { kind: 'kv', mount: 'secret', path: name },
                location: { file: 'p.yaml', line: 1, column: 1 },
              },
            ]),
          ),
          grants,
          rotations: [],
          files: ['p.yaml'],
        }),
      ),
    );
  const subjects = fc.record({
    issuer: fc.constantFrom('i1', 'i2', 'i3'),
    tenant: value,
    project: value,
    secret: value,
    pipeline: value,
    job: value,
    playbook: value,
    build: fc.constant('0'.repeat(32)),
  });
  const requests = fc.array(fc.constantFrom(...NAMES, 'undefined-name'), {
    minLength: 1,
    maxLength: 3,
  });

  it('allows, denies and picks grants exactly as the reference does', () => {
    fc.assert(
      fc.property(policySet, subjects, requests, (set, who, names) => {
        const actual = decide(set, who, names);
        const expected = referenceDecide(set, who, names);
        expect(actual.allowed).toBe(expected.allowed);
        if (!actual.allowed) {
          expect(actual.denied).toEqual(expected.denied);
          return;
        }
        const secrets = Object.fromEntries(
          [...actual.secrets].map(([name, d]) => [
            name,
            { grant: d.grant, ttlSeconds: d.ttlSeconds, wrap: d.wrap },
          ]),
        );
        expect(secrets).toEqual(expected.secrets);
        for (const [name, d] of actual.secrets) expect(d.secret).toBe(set.secrets.get(name));
      }),
      { numRuns: 3000 },
    );
  });
});
