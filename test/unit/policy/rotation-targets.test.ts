/**
 * Rotation targets that reach outside OpenBao (`applicationCredential`, `command`): what
 * the loader accepts, the problems it reports at file:line:col, and the `short-grace`
 * warning of `zsb policy check`.
 */
import { describe, expect, it } from 'vitest';
import { formatProblem, parsePolicyFiles } from '../../../src/policy/load.js';
import { rotationWarnings } from '../../../src/policy/rotation-targets.js';

const SECRETS = [
  'secrets:',
  '  cloud: { kv: { mount: secret, path: zuul/scs/cloud } }',
  '  rotator: { kv: { mount: secret, path: zsb/keystone/scs } }',
  '  registry: { kv: { mount: secret, path: zuul/images/robot } }',
  '  db: { database: { mount: database, role: ro } }',
];

function load(...lines: string[]) {
  return parsePolicyFiles([{ name: 'a.yaml', text: [...SECRETS, ...lines, ''].join('\n') }], {
    maxTtlSeconds: 7200,
  });
}

function problems(...lines: string[]): string[] {
  const result = load(...lines);
  return result.ok ? [] : result.problems.map(formatProblem);
}

describe('applicationCredential target', () => {
  it('accepts a full declaration with defaults filled in', () => {
    const result = load(
      'rotations:',
      '  - secret: cloud',
      '    every: 7d',
      '    target:',
      '      applicationCredential:',
      '        rotator: rotator',
      '        grace: 2h',
      '        expiresAfter: 30d',
      '        namePrefix: scs-compliance',
      '        roles: [member]',
      '        accessRules: [{ service: compute, method: GET, path: /v2.1/servers }]',
      '  - secret: registry',
      '    every: 1d',
      '    target: { applicationCredential: { rotator: rotator } }',
    );
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    expect(result.set.rotations[0]?.target).toEqual({
      kind: 'application-credential',
      rotator: 'rotator',
      graceSeconds: 7200,
      expiresAfterSeconds: 30 * 86400,
      namePrefix: 'scs-compliance',
      roles: ['member'],
      accessRules: [{ service: 'compute', method: 'GET', path: '/v2.1/servers' }],
    });
    expect(result.set.rotations[0]?.generate).toBeUndefined();
    expect(result.set.rotations[1]?.target).toEqual({
      kind: 'application-credential',
      rotator: 'rotator',
      graceSeconds: 3600,
    });
  });

  it('reports bad declarations where they are', () => {
    expect(
      problems(
        'rotations:',
        '  - secret: cloud',
        '    every: 7d',
        '    generate: { key: password, kind: password }',
        '    target: { applicationCredential: { rotator: nobody, grace: 1d, expiresAfter: 1h } }',
        '  - secret: registry',
        '    every: 7d',
        '    target:',
        '      applicationCredential: { rotator: db, namePrefix: "a b" }',
        '      postgres: { admin: rotator }',
        '  - secret: rotator',
        '    every: 7d',
        '    target: { applicationCredential: { rotator: rotator, accessRules: [{ service: compute, method: GET, path: servers }] } }',
      ),
    ).toEqual([
      "a.yaml:9:15: rotations[0].generate: the broker makes an application credential's secret",
      'a.yaml:10:82: rotations[0].target.applicationCredential.expiresAfter: must be longer than the grace period, or a credential expires while jobs still use it',
      'a.yaml:14:7: rotations[1].target: set one of postgres, staticRole, applicationCredential or command',
      "a.yaml:18:111: rotations[2].target.applicationCredential.accessRules[0].path: must start with '/' (a URL path, '*' and '**' allowed)",
    ]);
    expect(
      problems(
        'rotations:',
        '  - secret: cloud',
        '    every: 1h',
        '    target: { applicationCredential: { rotator: rotator, grace: 2h } }',
      ),
    ).toEqual(['a.yaml:8:12: rotations[0].every: must be longer than the grace period']);
    // Names are checked across files once each rotation is well-formed.
    expect(
      problems(
        'rotations:',
        '  - secret: cloud',
        '    every: 7d',
        '    target: { applicationCredential: { rotator: nobody } }',
        '  - secret: registry',
        '    every: 7d',
        '    target: { applicationCredential: { rotator: db } }',
        '  - secret: rotator',
        '    every: 7d',
        '    target: { applicationCredential: { rotator: rotator } }',
      ),
    ).toEqual([
      "a.yaml:7:5: rotation of 'cloud': rotator names unknown secret 'nobody'",
      "a.yaml:10:5: rotation of 'registry': rotator 'db' must be a KV secret",
      "a.yaml:13:5: rotation of 'rotator': rotator must be another secret than the one rotated",
    ]);
  });

  it('warns when the grace is shorter than the longest grant ttl allowing the secret', () => {
    const result = load(
      'grants:',
      '  - name: short',
      '    match: { tenant: scs, project: p, secret: s, pipeline: periodic }',
      '    allow: [cloud]',
      '    ttl: 15m',
      '  - name: long',
      '    match: { tenant: scs, project: p, secret: s, pipeline: post }',
      '    allow: [cloud, registry]',
      '    ttl: 2h',
      'rotations:',
      '  - secret: cloud',
      '    every: 7d',
      '    target: { applicationCredential: { rotator: rotator, grace: 30m } }',
      '  - secret: registry',
      '    every: 7d',
      '    target: { applicationCredential: { rotator: rotator, grace: 2h } }',
    );
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    expect(rotationWarnings(result.set)).toEqual([
      {
        rotation: 'cloud',
        kind: 'short-grace',
        message:
          "grace 30m is shorter than the ttl 2h of grant 'long': a job that fetched the previous credential just before a rotation loses it while it runs; set grace to at least 2h",
        location: { file: 'a.yaml', line: 16, column: 5 },
      },
    ]);
  });
});

describe('command target', () => {
  it('accepts executables per step, with generate making the value', () => {
    const result = load(
      'rotations:',
      '  - secret: registry',
      '    every: 30d',
      '    generate: { key: password, kind: password, length: 40 }',
      '    target:',
      '      command:',
      '        set: [/usr/local/lib/zsb/htpasswd-robot, set]',
      '        test: [/usr/local/lib/zsb/htpasswd-robot, test]',
      '        input: file',
      '        timeout: 30s',
      '        env: { HTPASSWD_FILE: /srv/registry/htpasswd }',
    );
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    expect(result.set.rotations[0]?.target).toEqual({
      kind: 'command',
      steps: {
        set: ['/usr/local/lib/zsb/htpasswd-robot', 'set'],
        test: ['/usr/local/lib/zsb/htpasswd-robot', 'test'],
      },
      input: 'file',
      timeoutSeconds: 30,
      env: { HTPASSWD_FILE: '/srv/registry/htpasswd' },
    });
  });

  it('reports relative executables, reserved variables, generate beside create and missing steps', () => {
    expect(
      problems(
        'rotations:',
        '  - secret: registry',
        '    every: 30d',
        '    generate: { key: password, kind: password }',
        '    target:',
        '      command:',
        '        create: [/opt/robot, create]',
        '        set: [robot, set]',
        '        test: [/opt/../robot]',
        '        timeout: 2h',
        '        env: { PATH: /tmp, ZSB_X: y }',
      ),
    ).toEqual([
      'a.yaml:9:15: rotations[0].generate: set one of generate or a create command',
      'a.yaml:13:15: rotations[0].target.command.set[0]: must be an absolute, normalised path to the executable',
      'a.yaml:14:16: rotations[0].target.command.test[0]: must be an absolute, normalised path to the executable',
      'a.yaml:15:18: rotations[0].target.command.timeout: must be at most 60 minutes',
      'a.yaml:16:22: rotations[0].target.command.env.PATH: not a usable variable name (ZSB_*, PATH, HOME, LD_* are reserved)',
      'a.yaml:16:35: rotations[0].target.command.env.ZSB_X: not a usable variable name (ZSB_*, PATH, HOME, LD_* are reserved)',
    ]);
    expect(
      problems(
        'rotations:',
        '  - secret: cloud',
        '    every: 30d',
        '    generate: { key: password, kind: password }',
        '    target: { command: { set: [/opt/robot] } }',
      ),
    ).toEqual(["a.yaml:10:24: missing required key 'test' in rotations[0].target.command"]);
  });
});
