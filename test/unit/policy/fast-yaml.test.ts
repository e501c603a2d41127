import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCommonYaml } from '../../../src/policy/fast-yaml.js';
import { formatProblem, parsePolicyFiles } from '../../../src/policy/load.js';
import type { SourceFile } from '../../../src/policy/source.js';
import {
  forgetParsedFiles,
  parseSource,
  parseSourceWithPositions,
} from '../../../src/policy/source.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

afterEach(() => forgetParsedFiles());

/** The property the fast path must keep: whatever it accepts, yaml accepts with the same data. */
function expectSameAsFullParser(text: string): boolean {
  const fast = parseCommonYaml(text);
  if (fast === undefined) return false;
  const full = parseSourceWithPositions({ name: 'f.yaml', text });
  if (!full.ok) throw new Error(`fast path accepted what yaml rejects:\n${text}`);
  expect(fast.data).toStrictEqual(full.source.data);
  return true;
}

function yamlFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...yamlFilesUnder(path));
    else if (/\.ya?ml$/.test(entry.name)) out.push(path);
  }
  return out;
}

describe('the fast YAML path', () => {
  it('reads every YAML file of the repository as the yaml library does, or leaves it to it', () => {
    const files = yamlFilesUnder(ROOT);
    expect(files.length).toBeGreaterThan(5);
    const accepted = files.filter((f) => expectSameAsFullParser(readFileSync(f, 'utf8')));
    // The shipped policy files are written in the common subset.
    expect(accepted.some((f) => f.includes(`${join('policies', 'scs.yaml')}`))).toBe(true);
  });

  it("resolves plain scalars as the yaml library's YAML 1.2 core schema does", () => {
    const text = yaml(
      'a: yes', // YAML 1.1 boolean, a string in 1.2
      'b: no',
      'c: on',
      'd: 0755', // YAML 1.1 octal, decimal 755 in 1.2
      'e: 0o17',
      'f: 0x1F',
      'g: 1e3',
      'h: .5',
      'i: -12',
      'j: +7',
      'k: ~',
      'l: null',
      'm:',
      'n: True',
      'o: 2001-12-14', // a timestamp in YAML 1.1, a string here
      'p: 1_000',
      'q: 15m',
      "r: 'it''s'",
      's: "quoted: yes"',
      't: https://zuul.example.org/a#b',
      'u: [a, "b", 1, {v: w}]',
      'x: 12345678901234567890',
    );
    expect(expectSameAsFullParser(text)).toBe(true);
    expect(parseCommonYaml(text)?.data).toMatchObject({ a: 'yes', d: 755, e: 15, m: null });
  });

  it.each([
    ['an anchor and an alias', yaml('a: &x [1]', 'b: *x')],
    ['a merge key', yaml('base: &b {x: 1}', 'c:', '  <<: *b')],
    ['a merge key without an anchor', yaml('c:', '  <<: {x: 1}')],
    ['a tag', yaml('a: !!str 1')],
    ['a local tag', yaml('a: !secret x')],
    ['a duplicate key', yaml('a: 1', 'a: 2')],
    ['two documents', yaml('a: 1', '---', 'b: 2')],
    ['a document start', yaml('---', 'a: 1')],
    ['a directive', yaml('%YAML 1.2', '---', 'a: 1')],
    ['a block scalar', yaml('a: |', '  text')],
    ['a multi-line plain scalar', yaml('a: one', '  two')],
    ['a multi-line flow sequence', yaml('a: [1,', '  2]')],
    ['a comment in a flow sequence', yaml('a: [1, # one', '  2]')],
    ['an escape in a double-quoted scalar', yaml('a: "x\\ty"')],
    ['a tab', 'a:\t1\n'],
    ['a CR', 'a: 1\r\nb: 2\r\n'],
    ['non-ASCII text', yaml('a: grüße')],
    ['a collection as a key', yaml('? [a]', ': 1')],
    ['a number as a key', yaml('1: a')],
    ['a null key', yaml(': a')],
    ['a key of Object.prototype', yaml('__proto__: a')],
    ['.inf', yaml('a: .inf')],
    ['a byte order mark', `\uFEFF${yaml('a: 1')}`],
    ['a boolean as a key', yaml('true: a')],
    ['a null word as a key', yaml('Null: a')],
    ['a ~ as a key', yaml('~: a')],
    ['a quoted key of Object.prototype', yaml('"constructor": a')],
    ['a key of Object.prototype in a flow mapping', yaml('a: {toString: b}')],
    ['a duplicate key in a flow mapping', yaml('a: {b: 1, "b": 2}')],
    ['a line longer than yaml allows for an implicit key', yaml(`${'k'.repeat(1100)}: a`)],
    ['an empty file', ''],
    ['a comment only', yaml('# nothing')],
  ])('leaves %s to the yaml library', (_, text) => {
    expect(parseCommonYaml(text)).toBeUndefined();
  });

  it('never accepts what the yaml library reads differently (generated documents)', () => {
    const scalar = fc.constantFrom(
      'a',
      'yes',
      '0755',
      '0o7',
      '0x1f',
      '1e3',
      '.5',
      '~',
      'null',
      '',
      'True',
      '"d"',
      "'s''q'",
      '"a\\"b"',
      'a #c',
      'a#c',
      'x: y',
      '[a, b]',
      '{a: 1, b}',
      '{a: [1, {b: c}]}',
      '[a, # c',
      ']',
      '&x a',
      '*x',
      '!!str 1',
      '<<',
      '|',
      '>-',
      '"',
      "'",
      '{',
      'a:b',
      'http://x/y',
      '-1',
      '- a',
      '? a',
      ': b',
      '#',
      '@a',
      '`a',
      '%a',
      'a, b',
      '[a]b',
    );
    const key = fc.constantFrom('k', 'name', 'l', '"q"', "'s'", '1', 'null', '<<', '? k', '- k');
    const line = fc.tuple(fc.constantFrom('', '  ', '    ', ' ', '- ', '  - '), key, scalar);
    const doc = fc.array(
      fc.oneof(
        line.map(([indent, k, v]) => `${indent}${k}: ${v}`),
        line.map(([indent, k]) => `${indent}${k}:`),
        line.map(([indent, , v]) => `${indent}- ${v}`),
        fc.constantFrom('---', '...', '# c', ''),
      ),
      { minLength: 1, maxLength: 8 },
    );
    let accepted = 0;
    fc.assert(
      fc.property(doc, (lines) => {
        if (expectSameAsFullParser(yaml(...lines))) accepted++;
      }),
      { numRuns: 3000 },
    );
    // The generator reaches the fast path often enough for the property to mean something.
    expect(accepted).toBeGreaterThan(100);
  });

  it('never accepts what the yaml library reads differently (generated character soup)', () => {
    // Pieces of YAML syntax in any order: indentation, indicators, quotes and the
    // scalars where YAML 1.1 and 1.2 (or js-yaml and yaml) could part ways.
    const piece = fc.constantFrom(
      ...['a', 'b:', 'c', '\n', '\n ', '\n  ', '\n    ', '- ', '-', ': ', ':', ' ', '[', ']'],
      ...['{', '}', ', ', ',', '# ', ' #', '#', "'", '"', '? ', '?', '\\', '!', '&a', '*a'],
      ...['Null', 'NULL', '~', 'TRUE', 'False', '-1', '+1', '.5', '5.', '1_0', '0o8', '0x1F'],
      ...['1e3', '1E+3', '-.5e-1', '-0', '00', '.inf', '__proto__', 'constructor', '<<', '%'],
    );
    let accepted = 0;
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 30 }), (pieces) => {
        if (expectSameAsFullParser(pieces.join(''))) accepted++;
      }),
      { numRuns: 5000 },
    );
    expect(accepted).toBeGreaterThan(500);
  });

  it('reads generated well-formed documents exactly as the yaml library does', () => {
    const scalar = fc.oneof(
      fc.constantFrom('yes', '0755', '0o7', '0x1f', '1e3', '.5', '~', 'null', 'True', '-0', '+1'),
      fc.constantFrom('"d"', "'s''q'", '"a: b"', "'#'", 'a#c', 'http://x/y', 'deploy-*', '15m'),
      fc.stringMatching(/^[a-z0-9][a-z0-9./*_-]{0,8}$/),
      fc.integer().map(String),
    );
    const flow = fc.oneof(
      fc.array(scalar, { maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`),
      fc
        .uniqueArray(fc.tuple(fc.constantFrom('a', 'b', 'c', 'tenant'), scalar), {
          selector: ([k]) => k,
          maxLength: 3,
        })
        .map((kvs) => `{ ${kvs.map(([k, v]) => `${k}: ${v}`).join(', ')} }`),
    );
    const value = fc.oneof(scalar, flow, fc.constant(''));
    const block = fc.uniqueArray(
      fc.tuple(
        fc.constantFrom('name', 'match', 'allow', 'ttl', 'x'),
        fc.oneof(value, fc.array(value, { minLength: 1, maxLength: 3 })),
      ),
      { selector: ([k]) => k, minLength: 1, maxLength: 4 },
    );
    const doc = fc.array(block, { minLength: 1, maxLength: 3 }).map((items) => {
      const lines = ['grants:'];
      for (const item of items) {
        item.forEach(([k, v], j) => {
          const lead = j === 0 ? '  - ' : '    ';
          if (Array.isArray(v)) lines.push(`${lead}${k}:`, ...v.map((x) => `      - ${x}`));
          else lines.push(`${lead}${k}: ${v}`);
        });
      }
      return `${lines.join('\n')}\n`;
    });
    let accepted = 0;
    fc.assert(
      fc.property(doc, (text) => {
        if (expectSameAsFullParser(text)) accepted++;
      }),
      { numRuns: 2000 },
    );
    expect(accepted).toBeGreaterThan(1500);
  });
});

describe('parsing a file through the fast path', () => {
  const valid = yaml(
    'secrets:',
    '  s: { kv: { mount: secret, path: zuul/s } }',
    'grants:',
    '  - name: g',
    '    match: { tenant: t1, project: "github.com/org/*" }',
    '    allow: [s]',
    '    ttl: 15m',
  );

  it('gives the same locations as the full parser, found when first read', () => {
    const fast = parseSource({ name: 'p.yaml', text: valid });
    const full = parseSourceWithPositions({ name: 'p.yaml', text: valid });
    if (!fast.ok || !full.ok) throw new Error('valid file rejected');
    for (const path of [
      ['grants', 0],
      ['grants', 0, 'match', 'project'],
      ['grants', 0, 'allow', 0],
      ['secrets', 's', 'kv'],
      ['grants', 7],
    ]) {
      expect({ ...fast.source.locate(path) }).toEqual(full.source.locate(path));
    }
    expect({ ...fast.source.locateKey(['secrets'], 's') }).toEqual(
      full.source.locateKey(['secrets'], 's'),
    );
  });

  it.each([
    ['a YAML syntax error', yaml('grants:', '  - name: [g', 'x: 1')],
    ['a duplicate key', yaml('grants: []', 'secrets: {}', 'grants: []')],
    ['a tab', 'grants:\n\t- name: g\n'],
    ['two documents', yaml('grants: []', '---', 'grants: []')],
    ['too many aliases', yaml('a: &a [x]', ...Array.from({ length: 60 }, (_, i) => `b${i}: *a`))],
  ])('reports %s with the same messages and positions as before', (_, text) => {
    const file: SourceFile = { name: 'bad.yaml', text };
    expect(parseSource(file)).toEqual(parseSourceWithPositions(file));
    expect(parseSource(file).ok).toBe(false);
  });

  it('reports a policy problem at the same file:line:col as the full parser', () => {
    const files = [
      {
        name: 'p.yaml',
        text: `${valid.replace('ttl: 15m', 'ttl: 15x')}  - name: g2\n    match: { tenant: t2 }\n    allow: [s, nope]\n`,
      },
    ];
    const fast = parsePolicyFiles(files, { maxTtlSeconds: 3600 });
    const full = parsePolicyFiles(files, { maxTtlSeconds: 3600 }, parseSourceWithPositions);
    if (fast.ok || full.ok) throw new Error('invalid set accepted');
    expect(fast.problems.map(formatProblem)).toEqual(full.problems.map(formatProblem));
    expect(fast.problems.map(formatProblem)).toEqual([
      "p.yaml:7:10: grants[0].ttl: '15x' is not a positive duration (e.g. 900, 15m, 1h30m)",
      "p.yaml:10:16: grant 'g2' allows unknown secret 'nope'",
    ]);
  });

  it('reuses a file parsed before when its text is unchanged, and parses a changed one again', () => {
    const first = parseSource({ name: 'p.yaml', text: valid });
    expect(parseSource({ name: 'p.yaml', text: new TextEncoder().encode(valid) })).toBe(first);
    const changed = parseSource({ name: 'p.yaml', text: valid.replace('15m', '10m') });
    expect(changed).not.toBe(first);
    if (!changed.ok) throw new Error('valid file rejected');
    expect(changed.source.data).toMatchObject({ grants: [{ ttl: '10m' }] });
    // The same text under another name is another file.
    expect(parseSource({ name: 'q.yaml', text: valid })).not.toBe(first);
  });

  it('keeps no yaml document tree alive for the files it keeps for reuse', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const settle = async (): Promise<void> => {
      // A WeakRef's target stays alive until the synchronous job that used it ends.
      await new Promise((resolve) => setImmediate(resolve));
      gc();
    };
    const grants = (f: number): string =>
      Array.from(
        { length: 1000 },
        (_, i) =>
          `  - name: f${f}g${i}\n    match: { tenant: t${i % 10}, project: "github.com/org/r${i}" }\n    allow: [s]\n    ttl: 15m\n`,
      ).join('');
    // An anchor puts a file outside the subset (the yaml library parses it); the others
    // get their positions from it when a location is read.
    const files = Array.from({ length: 4 }, (_, f) => ({
      name: `kept-${f}.yaml`,
      text: `${f % 2 === 0 ? 'x: &a 1\ny: *a\n' : ''}grants:\n${grants(f)}`,
    }));
    const textBytes = files.reduce((n, f) => n + f.text.length, 0);
    await settle();
    const before = process.memoryUsage().heapUsed;
    const kept = files.map((f) => parseSource(f));
    for (const r of kept) if (r.ok) expect(r.source.locate(['grants', 0]).line).toBeGreaterThan(1);
    await settle();
    const retained = process.memoryUsage().heapUsed - before;
    // Data and text take about 5 times the text; a kept document tree about 30 times.
    expect(retained).toBeLessThan(10 * textBytes);
    // Positions read after the tree was collected are found again, the same as before.
    for (const [f, r] of kept.entries()) {
      const full = parseSourceWithPositions(files[f] as SourceFile);
      if (!r.ok || !full.ok) throw new Error('valid file rejected');
      expect({ ...r.source.locate(['grants', 1, 'match']) }).toEqual(
        full.source.locate(['grants', 1, 'match']),
      );
    }
  });

  it('checks again on reload only the files that changed, and under other options all of them', () => {
    const other = yaml('grants:', '  - name: h', '    match: { tenant: t3 }', '    allow: [s]');
    const load = (text: string, maxTtlSeconds = 3600) => {
      const result = parsePolicyFiles(
        [
          { name: 'p.yaml', text: valid },
          { name: 'o.yaml', text },
        ],
        { maxTtlSeconds },
      );
      if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
      return result.set;
    };
    const before = load(other);
    const after = load(other.replace('t3', 't4'));
    expect(after.grants[0]).toBe(before.grants[0]);
    expect(after.grants[1]).not.toBe(before.grants[1]);
    expect(after.grants[1]?.match.tenant).toEqual(['t4']);
    // Another maximum TTL changes what a grant without ttl gets: checked again.
    const capped = load(other.replace('t3', 't4'), 1800);
    expect(capped.grants[1]?.ttlSeconds).toBe(1800);
    expect(capped.grants[0]).not.toBe(after.grants[0]);
  });
});
