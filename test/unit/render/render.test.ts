/**
 * Failures of rendering at fetch time: a clear reason that names fields, never values,
 * and no text at all (no half-rendered file).
 */
import { describe, expect, it } from 'vitest';
import { formatProblem, parsePolicyFiles } from '../../../src/policy/load.js';
import { renderFile } from '../../../src/render/render.js';
import { fillTemplate, parseTemplate } from '../../../src/render/template.js';

const SECRET_LOOKING = 'dummy-value-with space';

function specOf(render: Record<string, unknown>) {
  const text = JSON.stringify({ secrets: { s: { kv: { mount: 'secret', path: 'a' }, render } } });
  const result = parsePolicyFiles([{ name: 'p.yaml', text }], { maxTtlSeconds: 3600 });
  if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
  const spec = result.set.secrets.get('s')?.render;
  if (spec === undefined) throw new Error('no render spec');
  return spec;
}

const failures: {
  name: string;
  render: Record<string, unknown>;
  data: Record<string, unknown>;
  reason: RegExp;
}[] = [
  {
    name: 'a missing field',
    render: { format: 'clouds.yaml', cloud: 'c', authUrl: 'https://k.example.org/v3' },
    data: { application_credential_id: 'dummy-id' },
    reason: /^field 'application_credential_secret' is missing from the secret$/,
  },
  {
    name: 'a missing field under another key',
    render: { format: 'netrc', machine: 'h', fields: { password: 'token' } },
    data: { username: 'u', password: 'not the key named' },
    reason: /^field 'password' \(key 'token'\) is missing from the secret$/,
  },
  {
    name: 'a missing template field',
    render: { format: 'template', template: 'a={{ a }} b={{ b }}' },
    data: { a: 'x' },
    reason: /^field 'b' is missing from the secret$/,
  },
  {
    name: "a missing template field named '__proto__'",
    render: { format: 'template', template: 'v={{ __proto__ }}' },
    data: { x: 'dummy' },
    reason: /^field '__proto__' is missing from the secret$/,
  },
  {
    name: 'a mapping where text belongs',
    render: { format: 'template', template: '{{ a }}' },
    data: { a: { nested: 'x' } },
    reason: /^field 'a' is a mapping, not text$/,
  },
  {
    name: 'whitespace in a .netrc value',
    render: { format: 'netrc', machine: 'h' },
    data: { username: 'u', password: SECRET_LOOKING },
    reason: /^field 'password' is empty or contains whitespace.*\.netrc cannot hold$/,
  },
  {
    name: 'a leading quote in a .netrc value',
    render: { format: 'netrc', machine: 'h' },
    data: { username: '"u', password: 'p' },
    reason: /^field 'username' .*leading '"'/,
  },
  {
    name: "a '\\' in a .netrc value (Python's netrc drops it, curl keeps it)",
    render: { format: 'netrc', machine: 'h' },
    data: { username: 'u', password: 'dummy\\pass' },
    reason: /^field 'password' .*a '\\'.*\.netrc cannot hold$/,
  },
  {
    name: 'a C1 control character in a clouds.yaml value (PyYAML refuses it)',
    render: { format: 'clouds.yaml', cloud: 'c', authUrl: 'https://k.example.org/v3' },
    data: { application_credential_id: 'dummy-id', application_credential_secret: 'dummy\u0080x' },
    reason: /^field 'application_credential_secret' contains a character YAML 1\.1 readers cannot/,
  },
  {
    name: 'a NEL in a kubeconfig token (YAML 1.1 folds it to a space)',
    render: { format: 'kubeconfig', server: 'https://k.example.org:6443', cluster: 'c' },
    data: { token: 'dummy\u0085token' },
    reason: /^field 'token' contains a character YAML 1\.1 readers cannot/,
  },
  {
    name: "a ':' in a docker username",
    render: { format: 'docker-config.json', registry: 'r.example.org' },
    data: { username: 'a:b', password: 'p' },
    reason: /^field 'username' contains ':'$/,
  },
];

describe('renderFile refuses data the file cannot hold', () => {
  it.each(failures)('$name', ({ render, data, reason }) => {
    const result = renderFile(specOf(render), data);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toMatch(reason);
    for (const value of Object.values(data)) {
      if (typeof value === 'string' && value.length > 2) expect(result.reason).not.toContain(value);
    }
  });

  it('refuses a file over 1 MiB', () => {
    const result = renderFile(specOf({ format: 'template', template: '{{ a }}{{ a }}' }), {
      a: 'x'.repeat(600 * 1024),
    });
    expect(result).toEqual({ ok: false, reason: 'the file would be larger than 1024 KiB' });
  });

  it('writes numbers and booleans as text', () => {
    const result = renderFile(specOf({ format: 'template', template: '{{ n }} {{ b }}' }), {
      n: 5000,
      b: true,
    });
    expect(result).toEqual({ ok: true, file: { format: 'template', content: '5000 true' } });
  });
});

describe('the template language', () => {
  it.each([
    ['{{ a }}', true],
    ['{{a}}{{ b.c-d_e }}', true],
    ['no placeholder at all', true],
    ['{{ }}', false],
    ['{{ a b }}', false],
    ['{{{ a }}}', false],
    ['{{#section}}x{{/section}}', false],
    ['{{> partial }}', false],
    ['{{ a | upper }}', false],
    ['{{ a', false],
  ])('%s parses: %s', (text, ok) => {
    expect(parseTemplate(text).ok).toBe(ok);
  });

  it('says where a stray {{ is', () => {
    const parsed = parseTemplate('line one\n  x {{ bad! }}');
    expect(parsed).toEqual({
      ok: false,
      reason: expect.stringMatching(/^template line 2, column 5:/),
    });
  });

  it('puts values in verbatim: a value that looks like a placeholder is not expanded', () => {
    const parsed = parseTemplate('{{ a }}/{{ b }}');
    if (!parsed.ok) throw new Error(parsed.reason);
    const values: Record<string, string> = { a: '{{ b }}', b: 'B' };
    expect(fillTemplate(parsed.parts, (f) => values[f] ?? '')).toBe('{{ b }}/B');
  });
});
