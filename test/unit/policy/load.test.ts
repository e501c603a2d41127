import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadOptions } from '../../../src/policy/load.js';
import { formatProblem, loadPolicyDir, parsePolicyFiles } from '../../../src/policy/load.js';
import type { PolicyProblem, PolicySet } from '../../../src/policy/types.js';

const SHIPPED = fileURLToPath(new URL('../../../policies', import.meta.url));
const opts: LoadOptions = { maxTtlSeconds: 3600 };
const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

function problemsOf(
  files: Record<string, string | Uint8Array>,
  options = opts,
): readonly PolicyProblem[] {
  const result = parsePolicyFiles(
    Object.entries(files).map(([name, text]) => ({ name, text })),
    options,
  );
  return result.ok ? [] : result.problems;
}

function setOf(files: Record<string, string>, options = opts): PolicySet {
  const result = parsePolicyFiles(
    Object.entries(files).map(([name, text]) => ({ name, text })),
    options,
  );
  if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
  return result.set;
}

const CLOUDS = yaml('secrets:', '  clouds:', '    kv: { mount: secret, path: zuul/clouds }');

interface Expected {
  readonly file: string;
  readonly line: number;
  readonly column?: number;
  readonly message: string;
}

const cases: {
  name: string;
  files: Record<string, string | Uint8Array>;
  options?: LoadOptions;
  expected: Expected[];
}[] = [
  {
    name: 'YAML syntax error',
    files: { 'a.yaml': yaml('grants:', '  - name: g', '   bad: indent') },
    expected: [{ file: 'a.yaml', line: 3, column: 1, message: 'YAML:' }],
  },
  {
    name: 'duplicate key, with the key named',
    files: {
      'a.yaml': yaml(
        'secrets:',
        '  clouds: { kv: { mount: s, path: a } }',
        '  clouds: { kv: { mount: s, path: b } }',
      ),
    },
    expected: [{ file: 'a.yaml', line: 3, column: 3, message: "duplicate key 'clouds'" }],
  },
  {
    name: 'alias bomb fails fast',
    files: {
      'bomb.yaml': yaml(
        'a: &a [x, x, x, x, x, x, x, x, x, x]',
        'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
        'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
        'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
        'e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]',
        'f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]',
      ),
    },
    expected: [
      {
        file: 'bomb.yaml',
        line: 1,
        column: 1,
        message: 'too many YAML alias expansions (at most 50',
      },
    ],
  },
  {
    name: 'file over 256 KiB',
    files: { 'big.yaml': `# ${'x'.repeat(256 * 1024)}\n` },
    expected: [{ file: 'big.yaml', line: 1, column: 1, message: 'file is larger than 256 KiB' }],
  },
  {
    name: 'file over 256 KiB as bytes',
    files: { 'big.yaml': new Uint8Array(256 * 1024 + 1).fill(0x20) },
    expected: [{ file: 'big.yaml', line: 1, column: 1, message: 'file is larger than 256 KiB' }],
  },
  {
    name: 'non-UTF-8 bytes',
    files: {
      'latin1.yaml': new Uint8Array([
        0x73, 0x65, 0x63, 0x72, 0x65, 0x74, 0x73, 0x3a, 0x20, 0xe9, 0x0a,
      ]),
    },
    expected: [{ file: 'latin1.yaml', line: 1, column: 1, message: 'file is not valid UTF-8' }],
  },
  {
    name: 'more than one document',
    files: { 'a.yaml': yaml('grants: []', '---', 'grants: []') },
    expected: [{ file: 'a.yaml', line: 2, message: 'more than one YAML document' }],
  },
  {
    name: 'YAML tags are refused',
    files: { 'a.yaml': yaml('secrets:', '  clouds: !vault { kv: { mount: s, path: a } }') },
    expected: [{ file: 'a.yaml', line: 2, column: 11, message: 'Unresolved tag: !vault' }],
  },
  {
    name: 'top level is not a mapping',
    files: { 'a.yaml': yaml('- clouds') },
    expected: [
      {
        file: 'a.yaml',
        line: 1,
        column: 1,
        message: 'the file must be a mapping with secrets, grants and rotations, got a list',
      },
    ],
  },
  {
    name: 'unknown top-level key',
    files: { 'a.yaml': yaml('secrets: {}', 'grant: []') },
    expected: [
      { file: 'a.yaml', line: 2, column: 1, message: "unknown key 'grant' at the top level" },
    ],
  },
  {
    name: 'unknown key inside a secret source',
    files: {
      'a.yaml': yaml(
        'secrets:',
        '  clouds:',
        '    kv:',
        '      mount: secret',
        '      path: a',
        '      version: 3',
      ),
    },
    expected: [
      { file: 'a.yaml', line: 6, column: 7, message: "unknown key 'version' in secrets.clouds.kv" },
    ],
  },
  {
    name: 'unknown secret kind',
    files: { 'a.yaml': yaml('secrets:', '  clouds:', '    ssh: { mount: ssh }') },
    expected: [
      {
        file: 'a.yaml',
        line: 3,
        column: 5,
        message: "unknown key 'ssh' in secrets.clouds (kinds: kv, database, pki, token)",
      },
    ],
  },
  {
    name: 'secret with no kind',
    files: { 'a.yaml': yaml('secrets:', '  clouds: {}') },
    expected: [
      {
        file: 'a.yaml',
        line: 2,
        column: 3,
        message: "secret 'clouds' must set exactly one of kv, database, pki, token (found none)",
      },
    ],
  },
  {
    name: 'secret with two kinds',
    files: {
      'a.yaml': yaml(
        'secrets:',
        '  clouds:',
        '    kv: { mount: s, path: a }',
        '    token: { policies: [p] }',
      ),
    },
    expected: [{ file: 'a.yaml', line: 2, column: 3, message: '(found kv and token)' }],
  },
  {
    name: 'invalid secret name',
    files: {
      'a.yaml': yaml(
        'secrets:',
        '  Clouds:',
        '    kv: { mount: s, path: a }',
        '  -x:',
        '    kv: { mount: s, path: a }',
      ),
    },
    expected: [
      { file: 'a.yaml', line: 2, column: 3, message: "secret name 'Clouds' is invalid" },
      { file: 'a.yaml', line: 4, column: 3, message: "secret name '-x' is invalid" },
    ],
  },
  {
    name: 'unsupported kind',
    files: { 'a.yaml': yaml('secrets:', '  db:', '    database: { mount: database, role: ro }') },
    options: { maxTtlSeconds: 3600, supportedKinds: ['kv'] },
    expected: [
      {
        file: 'a.yaml',
        line: 3,
        column: 5,
        message: "secret kind 'database' is not supported by this broker version",
      },
    ],
  },
  {
    name: 'path template that leaves its mount',
    files: {
      'a.yaml': yaml(
        'secrets:',
        '  a: { kv: { mount: secret, path: "zuul/../other" } }',
        '  b: { kv: { mount: secret, path: "zuul//x" } }',
        '  c: { kv: { mount: secret, path: "zuul/%2e%2e/x" } }',
        '  d: { kv: { mount: secret, path: "/abs" } }',
        '  e: { kv: { mount: "../sys", path: "x" } }',
      ),
    },
    expected: [
      {
        file: 'a.yaml',
        line: 2,
        column: 35,
        message: "secrets.a.kv.path: path has a '.' or '..' segment",
      },
      {
        file: 'a.yaml',
        line: 3,
        column: 35,
        message: 'secrets.b.kv.path: path has an empty segment',
      },
      { file: 'a.yaml', line: 4, column: 35, message: "secrets.c.kv.path: path contains '%'" },
      {
        file: 'a.yaml',
        line: 5,
        column: 35,
        message: "secrets.d.kv.path: path starts or ends with '/'",
      },
      {
        file: 'a.yaml',
        line: 6,
        column: 21,
        message: "secrets.e.kv.mount: mount has a '.' or '..' segment",
      },
    ],
  },
  {
    name: 'unknown placeholder',
    files: {
      'a.yaml': yaml(
        'secrets:',
        '  a:',
        '    kv:',
        '      mount: secret',
        '      path: "zuul/{tenant}/{branch}"',
      ),
    },
    expected: [
      {
        file: 'a.yaml',
        line: 5,
        column: 13,
        message: "secrets.a.kv.path: unknown placeholder '{branch}'",
      },
    ],
  },
  {
    name: 'pki common name with {project}',
    files: {
      'a.yaml': yaml(
        'secrets:',
        '  cert:',
        '    pki: { mount: pki, role: ci, commonName: "{project}.example.org" }',
      ),
    },
    expected: [
      { file: 'a.yaml', line: 3, column: 46, message: "common name cannot use '{project}'" },
    ],
  },
  {
    name: 'missing required key',
    files: { 'a.yaml': yaml('grants:', '  - name: g', '    match: { tenant: scs }') },
    expected: [
      { file: 'a.yaml', line: 2, column: 5, message: "missing required key 'allow' in grants[0]" },
    ],
  },
  {
    name: 'wrong types',
    files: {
      'a.yaml': yaml('grants:', '  - name: g', '    match: { tenant: scs }', '    allow: clouds'),
    },
    expected: [
      {
        file: 'a.yaml',
        line: 4,
        column: 12,
        message: 'grants[0].allow: expected a list, got a string',
      },
    ],
  },
  {
    name: 'match field not allowed',
    files: {
      'a.yaml':
        CLOUDS +
        yaml(
          'grants:',
          '  - name: g',
          '    match: { tenant: scs, change: "42" }',
          '    allow: [clouds]',
        ),
    },
    expected: [
      {
        file: 'a.yaml',
        line: 6,
        column: 27,
        message: "unknown key 'change' in grants[0].match (fields: issuer, tenant",
      },
    ],
  },
  {
    name: 'match value: empty list or not strings',
    files: {
      'a.yaml':
        CLOUDS +
        yaml(
          'grants:',
          '  - name: g',
          '    match:',
          '      tenant: []',
          '      job: 5',
          '    allow: [clouds]',
        ),
    },
    expected: [
      {
        file: 'a.yaml',
        line: 7,
        column: 15,
        message: 'grants[0].match.tenant: must list at least one pattern',
      },
      {
        file: 'a.yaml',
        line: 8,
        column: 12,
        message: 'grants[0].match.job: must be a string or a non-empty list of strings',
      },
    ],
  },
  {
    name: 'wrap value',
    files: {
      'a.yaml':
        CLOUDS +
        yaml(
          'grants:',
          '  - name: g',
          '    match: { tenant: scs }',
          '    allow: [clouds]',
          '    wrap: sometimes',
        ),
    },
    expected: [{ file: 'a.yaml', line: 8, column: 11, message: 'grants[0].wrap: Invalid option' }],
  },
  {
    name: 'invalid globs, with the list item located',
    files: {
      'a.yaml':
        CLOUDS +
        yaml(
          'grants:',
          '  - name: g',
          '    match:',
          '      job: ["ok-*", "bad**"]',
          '      project: "a//*"',
          '      issuer: "https://*"',
          '    allow: [clouds]',
        ),
    },
    expected: [
      {
        file: 'a.yaml',
        line: 7,
        column: 21,
        message: "grants[0].match.job[1]: '**' must be a whole path segment",
      },
      {
        file: 'a.yaml',
        line: 8,
        column: 16,
        message: "grants[0].match.project: pattern with '*' has an empty",
      },
      {
        file: 'a.yaml',
        line: 9,
        column: 15,
        message: "grants[0].match.issuer: issuers are matched exactly: '*' is not allowed",
      },
    ],
  },
  {
    name: 'empty match would grant everyone',
    files: {
      'a.yaml': CLOUDS + yaml('grants:', '  - name: g', '    match: {}', '    allow: [clouds]'),
    },
    expected: [
      {
        file: 'a.yaml',
        line: 6,
        column: 12,
        message: 'grants[0].match: must list at least one field',
      },
    ],
  },
  {
    name: 'invalid grant name',
    files: {
      'a.yaml':
        CLOUDS +
        yaml(
          'grants:',
          '  - name: "Has Space"',
          '    match: { tenant: scs }',
          '    allow: [clouds]',
        ),
    },
    expected: [
      { file: 'a.yaml', line: 5, column: 11, message: "grant name 'Has Space' is invalid" },
    ],
  },
  {
    name: 'ttl above the maximum, and not a duration',
    files: {
      'a.yaml':
        CLOUDS +
        yaml(
          'grants:',
          '  - name: g1',
          '    match: { tenant: scs }',
          '    allow: [clouds]',
          '    ttl: 2h',
          '  - name: g2',
          '    match: { tenant: scs }',
          '    allow: [clouds]',
          '    ttl: soon',
        ),
    },
    expected: [
      {
        file: 'a.yaml',
        line: 8,
        column: 10,
        message: 'grants[0].ttl: 2h exceeds the maximum of 1h (config maxTtlSeconds)',
      },
      {
        file: 'a.yaml',
        line: 12,
        column: 10,
        message: "grants[1].ttl: 'soon' is not a positive duration",
      },
    ],
  },
  {
    name: 'grant naming an unknown secret, at the list item',
    files: {
      'a.yaml':
        CLOUDS +
        yaml(
          'grants:',
          '  - name: g',
          '    match: { tenant: scs }',
          '    allow:',
          '      - clouds',
          '      - cloudz',
        ),
    },
    expected: [
      { file: 'a.yaml', line: 9, column: 9, message: "grant 'g' allows unknown secret 'cloudz'" },
    ],
  },
  {
    name: 'secret listed twice in one grant',
    files: {
      'a.yaml':
        CLOUDS +
        yaml('grants:', '  - name: g', '    match: { tenant: scs }', '    allow: [clouds, clouds]'),
    },
    expected: [
      {
        file: 'a.yaml',
        line: 7,
        column: 21,
        message: "grants[0].allow[1]: secret 'clouds' is listed twice",
      },
    ],
  },
  {
    name: 'duplicate secret across files names both places',
    files: {
      'a.yaml': CLOUDS,
      'b.yaml': yaml(
        '# other team',
        'secrets:',
        '  clouds:',
        '    kv: { mount: secret, path: other }',
      ),
    },
    expected: [
      {
        file: 'b.yaml',
        line: 3,
        column: 3,
        message: "secret 'clouds' is defined twice: here and at a.yaml:2:3",
      },
    ],
  },
  {
    name: 'duplicate grant across files names both places',
    files: {
      'a.yaml':
        CLOUDS +
        yaml('grants:', '  - name: deploy', '    match: { tenant: scs }', '    allow: [clouds]'),
      'b.yaml': yaml(
        'grants:',
        '  - name: other',
        '    match: { tenant: x }',
        '    allow: [clouds]',
        '  - name: deploy',
        '    match: { tenant: y }',
        '    allow: [clouds]',
      ),
    },
    expected: [
      {
        file: 'b.yaml',
        line: 5,
        column: 5,
        message: "grant 'deploy' is defined twice: here and at a.yaml:5:5",
      },
    ],
  },
  {
    name: 'rotation problems',
    files: {
      'a.yaml':
        CLOUDS +
        yaml(
          'rotations:',
          '  - secret: clouds',
          '    every: 7d',
          '    schedule: "0 3 * * 1"',
          '    generate: { key: password, kind: password }',
          '  - secret: nowhere',
          '    every: 7d',
          '    generate: { key: password, kind: password }',
          '  - secret: clouds',
          '    every: weekly',
          '    generate: { key: password, kind: password }',
          '  - secret: clouds',
          '    generate: { key: password, kind: password }',
          '  - secret: clouds',
          '    schedule: "61 * * * *"',
          '    generate: { key: password, kind: password }',
          '  - secret: clouds',
          '    every: 1d',
          '  - secret: clouds',
          '    every: 1d',
          '    window: "25:00-01:00"',
          '    generate: { key: token, kind: token, length: 8, format: pem }',
          '  - secret: clouds',
          '    every: 1d',
          '    generate: { key: password, kind: password, alphabet: "aa" }',
        ),
    },
    expected: [
      {
        file: 'a.yaml',
        line: 5,
        column: 5,
        message: 'rotations[0]: set exactly one of schedule or every',
      },
      { file: 'a.yaml', line: 9, column: 5, message: "rotation names unknown secret 'nowhere'" },
      {
        file: 'a.yaml',
        line: 13,
        column: 12,
        message: "rotations[2].every: 'weekly' is not a positive duration",
      },
      {
        file: 'a.yaml',
        line: 15,
        column: 5,
        message: 'rotations[3]: set exactly one of schedule or every',
      },
      {
        file: 'a.yaml',
        line: 18,
        column: 15,
        message: "rotations[4].schedule: '61 * * * *' is not a cron expression",
      },
      { file: 'a.yaml', line: 20, column: 5, message: 'rotations[5]: set generate' },
      {
        file: 'a.yaml',
        line: 24,
        column: 13,
        message: "rotations[6].window: '25:00-01:00' is not a UTC window like 01:00-05:00",
      },
      {
        file: 'a.yaml',
        line: 25,
        column: 50,
        message: 'rotations[6].generate.length: must be between 16 and 512 for token',
      },
      {
        file: 'a.yaml',
        line: 25,
        column: 61,
        message: 'rotations[6].generate.format: must be one of hex, base64, base64url',
      },
      {
        file: 'a.yaml',
        line: 28,
        column: 58,
        message: 'rotations[7].generate.alphabet: must list at least two distinct characters',
      },
    ],
  },
  {
    name: 'two rotations of one secret',
    files: {
      'a.yaml':
        CLOUDS +
        yaml(
          'rotations:',
          '  - secret: clouds',
          '    every: 7d',
          '    generate: { key: password, kind: password }',
          '  - secret: clouds',
          '    schedule: "@daily"',
          '    generate: { key: password, kind: password }',
        ),
    },
    expected: [
      {
        file: 'a.yaml',
        line: 8,
        column: 5,
        message: "secret 'clouds' has a second rotation: here and at a.yaml:5:5",
      },
    ],
  },
  {
    name: 'rotation targets',
    files: {
      'a.yaml':
        CLOUDS +
        yaml(
          '  db: { database: { mount: database, role: ro } }',
          '  mine: { kv: { mount: secret, path: "zuul/{project}/x" } }',
          'rotations:',
          '  - secret: db',
          '    every: 7d',
          '    generate: { key: password, kind: password }',
          '  - secret: mine',
          '    every: 7d',
          '    generate: { key: password, kind: password }',
          '  - secret: clouds',
          '    every: 7d',
          '    target: { postgres: { admin: nobody, users: [a, b] } }',
          '  - every: 7d',
          '    target: { staticRole: { mount: database, role: "../x" } }',
          '  - secret: clouds',
          '    every: 1d',
          '    generate: { key: token, kind: token }',
          '    target: { postgres: { admin: db, users: [u, u] } }',
        ),
    },
    expected: [
      {
        file: 'a.yaml',
        line: 7,
        column: 5,
        message: 'only KV secrets are rotated (this one is database)',
      },
      { file: 'a.yaml', line: 10, column: 5, message: 'its path has placeholders' },
      { file: 'a.yaml', line: 13, column: 5, message: "admin names unknown secret 'nobody'" },
      { file: 'a.yaml', line: 17, column: 52, message: "staticRole.role: role cannot contain '/'" },
      { file: 'a.yaml', line: 20, column: 15, message: 'use { key: password, kind: password }' },
      { file: 'a.yaml', line: 21, column: 45, message: 'the two logins must differ' },
    ],
  },
];

describe('parsePolicyFiles problems', () => {
  it.each(cases)('$name', ({ files, options, expected }) => {
    const problems = problemsOf(files, options ?? opts);
    expect(problems.map(formatProblem)).toHaveLength(expected.length);
    expected.forEach((e, i) => {
      const p = problems[i];
      expect(p, formatProblem(p ?? { file: '?', line: 0, column: 0, message: '?' })).toMatchObject({
        file: e.file,
        line: e.line,
        ...(e.column === undefined ? {} : { column: e.column }),
        message: expect.stringContaining(e.message),
      });
    });
  });

  it('reports problems of every file, ordered by file, line and column', () => {
    const problems = problemsOf({
      'b.yaml': yaml('grants: []', 'rotations: []', '', '', 'extra: 1'),
      'a.yaml': yaml('secrets:', '  X: { kv: { mount: s, path: a } }'),
    });
    expect(problems.map(formatProblem)).toEqual([
      expect.stringMatching(/^b\.yaml:5:1: unknown key 'extra' at the top level/),
      expect.stringMatching(/^a\.yaml:2:3: secret name 'X' is invalid/),
    ]);
  });

  it('never prints control characters from a name into a message', () => {
    const problems = problemsOf({
      'a.yaml': yaml('secrets:', '  "bad\\nname": { kv: { mount: s, path: a } }'),
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]?.message).toContain("secret name 'bad\\nname' is invalid");
    expect(problems[0]?.message).not.toContain('\n');
  });
});

describe('parsePolicyFiles result', () => {
  it('builds an immutable set with defaults', () => {
    const set = setOf({
      'a.yaml': yaml(
        'version: 1',
        'secrets:',
        '  clouds: { kv: { mount: secret, path: zuul/clouds, keys: [username, password] } }',
        '  db: { database: { mount: database, role: ro } }',
        '  cert: { pki: { mount: pki, role: ci, commonName: "{build}.ci.example.org" } }',
        '  bao: { token: { policies: [e2e] } }',
        'grants:',
        '  - name: g',
        '    match: { tenant: scs, pipeline: [post, periodic] }',
        '    allow: [clouds, db]',
        '  - name: h',
        '    match: { job: "x-*" }',
        '    allow: [cert, bao]',
        '    ttl: 900',
        '    wrap: required',
        'rotations:',
        '  - secret: clouds',
        '    every: 7d',
        '    jitter: 1h',
        '    generate: { key: password, kind: password, length: 40 }',
      ),
      'empty.yaml': yaml('# all commented out', 'grants:'),
    });
    expect([...set.secrets.keys()]).toEqual(['clouds', 'db', 'cert', 'bao']);
    expect(set.secrets.get('clouds')).toEqual({
      name: 'clouds',
      source: { kind: 'kv', mount: 'secret', path: 'zuul/clouds', keys: ['username', 'password'] },
      location: { file: 'a.yaml', line: 3, column: 3 },
    });
    expect(set.secrets.get('cert')?.source).toEqual({
      kind: 'pki',
      mount: 'pki',
      role: 'ci',
      commonName: '{build}.ci.example.org',
    });
    expect(set.grants).toEqual([
      {
        name: 'g',
        match: { tenant: ['scs'], pipeline: ['post', 'periodic'] },
        // Each field's value, so warnings point at the field at fault.
        matchLocations: {
          tenant: { file: 'a.yaml', line: 9, column: 22 },
          pipeline: { file: 'a.yaml', line: 9, column: 37 },
        },
        allow: ['clouds', 'db'],
        ttlSeconds: 3600,
        wrap: 'optional',
        location: { file: 'a.yaml', line: 8, column: 5 },
      },
      {
        name: 'h',
        match: { job: ['x-*'] },
        matchLocations: { job: { file: 'a.yaml', line: 12, column: 19 } },
        allow: ['cert', 'bao'],
        ttlSeconds: 900,
        wrap: 'required',
        location: { file: 'a.yaml', line: 11, column: 5 },
      },
    ]);
    expect(set.rotations).toEqual([
      {
        name: 'clouds',
        secret: 'clouds',
        everySeconds: 604800,
        jitterSeconds: 3600,
        generate: { key: 'password', kind: 'password', length: 40 },
        target: { kind: 'kv' },
        location: { file: 'a.yaml', line: 17, column: 5 },
      },
    ]);
    expect(set.files).toEqual(['a.yaml', 'empty.yaml']);
    expect(Object.isFrozen(set)).toBe(true);
    expect(Object.isFrozen(set.grants)).toBe(true);
    expect(Object.isFrozen(set.grants[0]?.match)).toBe(true);
  });

  it('accepts anchors and aliases within the limit', () => {
    const set = setOf({
      'a.yaml':
        CLOUDS +
        yaml(
          'grants:',
          '  - name: a',
          '    match: { pipeline: &merged [post, promote] }',
          '    allow: [clouds]',
          '  - name: b',
          '    match: { pipeline: *merged, tenant: scs }',
          '    allow: [clouds]',
        ),
    });
    expect(set.grants[1]?.match.pipeline).toEqual(['post', 'promote']);
  });

  it('parses bytes with a UTF-8 byte order mark', () => {
    const text = new TextEncoder().encode(`\ufeff${CLOUDS}`);
    const result = parsePolicyFiles([{ name: 'a.yaml', text }], opts);
    expect(result.ok).toBe(true);
  });

  it('formats problems as file:line:col: message', () => {
    expect(formatProblem({ file: 'a.yaml', line: 3, column: 5, message: 'boom' })).toBe(
      'a.yaml:3:5: boom',
    );
    expect(formatProblem({ file: 'policies', line: 0, column: 0, message: 'gone' })).toBe(
      'policies: gone',
    );
  });
});

describe('loadPolicyDir', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zsb-policy-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads the shipped policies/ directory cleanly', async () => {
    const result = await loadPolicyDir(SHIPPED, opts);
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    expect(result.set.files).toEqual(['scs.yaml']);
    expect([...result.set.secrets.keys()]).toEqual([
      'compliance-clouds',
      'project-deploy-key',
      'status-page-admin',
    ]);
  });

  it('reads top-level *.yaml and *.yml sorted, skipping tests/, dotfiles and other files', async () => {
    const root = join(dir, 'mixed');
    await mkdir(join(root, 'tests'), { recursive: true });
    await mkdir(join(root, 'sub.yaml'));
    await writeFile(
      join(root, 'b.yml'),
      yaml('grants:', '  - name: g', '    match: { tenant: scs }', '    allow: [clouds]'),
    );
    await writeFile(join(root, 'a.yaml'), CLOUDS);
    await writeFile(join(root, '.a.yaml.swp'), 'junk: [');
    await writeFile(join(root, '.hidden.yaml'), 'junk: [');
    await writeFile(join(root, 'README.md'), '# not a policy');
    await writeFile(join(root, 'tests', 'cases.yaml'), '- this is not a policy');
    const result = await loadPolicyDir(root, opts);
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    expect(result.set.files).toEqual(['a.yaml', 'b.yml']);
  });

  it.each([
    ['a missing directory', 'does-not-exist', 'policy directory does not exist'],
    ['an empty directory', 'empty', 'policy directory holds no *.yaml or *.yml files'],
    ['a file instead of a directory', 'plain-file', 'policy directory is not a directory'],
  ])('reports %s as a problem', async (_what, name, message) => {
    await mkdir(join(dir, 'empty'), { recursive: true });
    await writeFile(join(dir, 'plain-file'), 'x');
    const result = await loadPolicyDir(join(dir, name), opts);
    expect(result).toEqual({
      ok: false,
      problems: [{ file: join(dir, name), line: 0, column: 0, message }],
    });
  });

  it('refuses an oversized file without parsing it, and still reports the others', async () => {
    const root = join(dir, 'big');
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'a.yaml'), `# ${'x'.repeat(300 * 1024)}\n`);
    await writeFile(join(root, 'b.yaml'), 'grants: nope\n');
    const result = await loadPolicyDir(root, opts);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map(formatProblem)).toEqual([
      'a.yaml:1:1: file is larger than 256 KiB',
      'b.yaml:1:9: grants: expected a list, got a string',
    ]);
  });
});
