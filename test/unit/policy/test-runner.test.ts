import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatProblem, loadPolicyDir, parsePolicyFiles } from '../../../src/policy/load.js';
import type { PolicyTestCase } from '../../../src/policy/test-runner.js';
import {
  ANY_ISSUER,
  loadPolicyTests,
  parsePolicyTests,
  runPolicyTests,
} from '../../../src/policy/test-runner.js';
import type { PolicySet } from '../../../src/policy/types.js';

const SHIPPED = fileURLToPath(new URL('../../../policies', import.meta.url));
const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

const SET = ((): PolicySet => {
  const result = parsePolicyFiles(
    [
      {
        name: 'p.yaml',
        text: yaml(
          'secrets:',
          '  clouds: { kv: { mount: secret, path: zuul/clouds } }',
          '  admin: { kv: { mount: secret, path: zuul/admin } }',
          'grants:',
          '  - name: clouds-for-scs',
          '    match: { issuer: https://zuul.example.org, tenant: scs, pipeline: post }',
          '    allow: [clouds]',
        ),
      },
    ],
    { maxTtlSeconds: 3600 },
  );
  if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
  return result.set;
})();

function casesOf(text: string): readonly PolicyTestCase[] {
  const loaded = parsePolicyTests([{ name: 'tests/t.yaml', text }]);
  if (!loaded.ok) throw new Error(loaded.problems.map(formatProblem).join('\n'));
  return loaded.cases;
}

const IDENTITY = '{ tenant: scs, project: p/q, secret: s, pipeline: post, job: j }';

describe('runPolicyTests', () => {
  it('passes every case shipped in policies/tests against policies/', async () => {
    const set = await loadPolicyDir(SHIPPED, { maxTtlSeconds: 3600 });
    if (!set.ok) throw new Error(set.problems.map(formatProblem).join('\n'));
    const cases = await loadPolicyTests(join(SHIPPED, 'tests'));
    if (!cases.ok) throw new Error(cases.problems.map(formatProblem).join('\n'));
    expect(cases.cases.length).toBeGreaterThan(0);
    const failed = runPolicyTests(set.set, cases.cases).filter((o) => !o.passed);
    expect(failed).toEqual([]);
  });

  it.each([
    [
      'a correct case',
      `- name: c\n  identity: ${IDENTITY}\n  allow: [clouds]\n  deny: [admin]\n`,
      true,
      'as expected',
    ],
    [
      'an allow that is denied',
      `- name: c\n  identity: ${IDENTITY}\n  allow: [clouds, admin]\n`,
      false,
      'expected allowed, but denied: admin',
    ],
    [
      'a deny that is allowed, naming the grant',
      `- name: c\n  identity: ${IDENTITY}\n  deny: [clouds]\n`,
      false,
      'expected denied, but allowed: clouds (grant clouds-for-scs)',
    ],
    [
      'a name no policy defines (a typo would otherwise pass)',
      `- name: c\n  identity: ${IDENTITY}\n  deny: [cloudz]\n`,
      false,
      'names secrets no policy defines: cloudz',
    ],
    [
      'a case without issuer matches grants of any issuer',
      `- name: c\n  identity: ${IDENTITY}\n  allow: [clouds]\n`,
      true,
      'as expected',
    ],
    [
      'a case with another issuer does not match an issuer-bound grant',
      '- name: c\n  identity: { issuer: https://other.example.org, tenant: scs, project: p/q, secret: s, pipeline: post, job: j }\n  deny: [clouds]\n',
      true,
      'as expected',
    ],
  ])('reports %s', (_what, text, passed, message) => {
    const [outcome] = runPolicyTests(SET, casesOf(text));
    expect(outcome).toMatchObject({ name: 'c', passed, message: expect.stringContaining(message) });
    expect(outcome?.location).toEqual({ file: 'tests/t.yaml', line: 1, column: 3 });
  });

  it('fills defaults for missing identity fields', () => {
    const [c] = casesOf(`- name: c\n  identity: ${IDENTITY}\n  allow: [clouds]\n`);
    expect(c?.identity).toMatchObject({ issuer: ANY_ISSUER, playbook: '', build: '0'.repeat(32) });
    expect(c?.anyIssuer).toBe(true);
  });
});

describe('parsePolicyTests problems', () => {
  it.each([
    [
      'a missing identity field',
      '- name: c\n  identity: { tenant: scs, project: p, secret: s, pipeline: post }\n  allow: [x]\n',
      "2:13: missing required key 'job' in [0].identity",
    ],
    [
      'an unknown identity field',
      `- name: c\n  identity: { tenant: scs, project: p, secret: s, pipeline: p, job: j, change: "42" }\n  allow: [x]\n`,
      "2:72: unknown key 'change' in [0].identity",
    ],
    [
      'a case without expectations',
      `- name: c\n  identity: ${IDENTITY}\n`,
      "1:3: case 'c' lists no allow or deny names",
    ],
    [
      'a name both allowed and denied',
      `- name: c\n  identity: ${IDENTITY}\n  allow: [a]\n  deny: [a]\n`,
      "1:3: case 'c' both allows and denies: a",
    ],
    [
      'a file that is not a list',
      'name: c\n',
      '1:1: the file must be a list of test cases, got a mapping',
    ],
  ])('reports %s', (_what, text, expected) => {
    const loaded = parsePolicyTests([{ name: 'tests/t.yaml', text }]);
    expect(loaded.ok).toBe(false);
    if (!loaded.ok)
      expect(loaded.problems.map(formatProblem)).toEqual([`tests/t.yaml:${expected}`]);
  });

  it('reports a missing test directory as a problem', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zsb-policy-tests-'));
    try {
      const loaded = await loadPolicyTests(join(dir, 'tests'));
      expect(loaded).toEqual({
        ok: false,
        problems: [
          {
            file: join(dir, 'tests'),
            line: 0,
            column: 0,
            message: 'policy test directory does not exist',
          },
        ],
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
