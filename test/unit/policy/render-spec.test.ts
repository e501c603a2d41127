/**
 * `render:` declarations are checked at policy load, each problem at the file, line and
 * column of what is wrong: unknown formats and options, missing options, bad values,
 * templates that are not templates, and fields the secret's keys cannot deliver.
 */
import { describe, expect, it } from 'vitest';
import { formatProblem, parsePolicyFiles } from '../../../src/policy/load.js';

const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

function problems(text: string): string[] {
  const result = parsePolicyFiles([{ name: 'p.yaml', text }], { maxTtlSeconds: 3600 });
  return result.ok ? [] : result.problems.map(formatProblem);
}

const KV = '    kv: { mount: secret, path: zuul/x }';
const KV_KEYS = '    kv: { mount: secret, path: zuul/x, keys: [username, password] }';

describe('render: at policy load', () => {
  it.each([
    {
      name: 'an unknown format',
      lines: [KV, '    render: { format: ini }'],
      expected:
        /^p\.yaml:4:23: secrets\.s\.render\.format: Invalid option: expected one of "clouds\.yaml"/,
    },
    {
      name: 'an option of another format',
      lines: [KV, '    render: { format: netrc, machine: h, registry: r }'],
      expected:
        /^p\.yaml:4:52: secrets\.s\.render\.registry: does not apply to format 'netrc' \(its options: machine\)$/,
    },
    {
      name: 'a missing required option',
      lines: [KV, '    render:', '      format: clouds.yaml', '      cloud: c'],
      expected:
        /^p\.yaml:5:7: secrets\.s\.render: format 'clouds\.yaml' needs authUrl: Keystone's URL$/,
    },
    {
      name: 'an auth URL that is no URL',
      lines: [KV, '    render: { format: clouds.yaml, cloud: c, authUrl: "keystone:5000" }'],
      expected: /^p\.yaml:4:55: secrets\.s\.render\.authUrl: must be an http\(s\) URL$/,
    },
    {
      name: 'an unknown interface',
      lines: [
        KV,
        '    render: { format: clouds.yaml, cloud: c, authUrl: "https://k/v3", interface: private }',
      ],
      expected: /render\.interface: must be one of public, internal, admin$/,
    },
    {
      name: 'an unknown option',
      lines: [KV, '    render: { format: netrc, machine: h, host: x }'],
      expected: /^p\.yaml:4:42: unknown key 'host'/,
    },
    {
      name: 'a field the format does not have',
      lines: [KV, '    render: { format: netrc, machine: h, fields: { login: user } }'],
      expected:
        /render\.fields\.login: 'login' is not a field of netrc \(its fields: username, password\)$/,
    },
    {
      name: 'a stray {{ in a template',
      lines: [KV, '    render:', '      format: template', '      template: "a {{ b c }}"'],
      expected:
        /^p\.yaml:6:17: secrets\.s\.render\.template: template line 1, column 3: '\{\{' must open a placeholder/,
    },
    {
      name: 'a template without fields',
      lines: [KV, '    render: { format: template, template: "static" }'],
      expected: /render\.template: names no field/,
    },
    {
      name: 'fields: on a template',
      lines: [KV, '    render: { format: template, template: "{{ a }}", fields: { a: b } }'],
      expected: /render\.fields: a template names the secret's keys itself/,
    },
    {
      name: 'a template field the keys cannot have',
      lines: [KV_KEYS, '    render: { format: template, template: "{{ username }}:{{ token }}" }'],
      expected:
        /^p\.yaml:4:43: secrets\.s\.render\.template: the template names field 'token', which this secret cannot have: its kv\.keys are username, password$/,
    },
    {
      name: "a template field '__proto__' the keys cannot have (an own field, not a prototype)",
      lines: [KV_KEYS, '    render: { format: template, template: "{{ __proto__ }}" }'],
      expected:
        /^p\.yaml:4:43: secrets\.s\.render\.template: the template names field '__proto__', which this secret cannot have/,
    },
    {
      name: 'a format field the keys cannot have',
      lines: [KV_KEYS, '    render: { format: clouds.yaml, cloud: c, authUrl: "https://k/v3" }'],
      expected:
        /^p\.yaml:4:23: secrets\.s\.render\.format: clouds\.yaml needs field 'application_credential_id', which this secret cannot have/,
    },
    {
      name: 'a remapped field the keys cannot have',
      lines: [KV_KEYS, '    render: { format: netrc, machine: h, fields: { password: token } }'],
      expected: /render\.fields\.password: netrc needs field 'password' \(key 'token'\), which/,
    },
    {
      name: 'a dynamic secret',
      lines: ['    database: { mount: db, role: r }', '    render: { format: netrc, machine: h }'],
      expected: /render: ready files are made from kv secrets only \(this one is database\)$/,
    },
  ])('refuses $name', ({ lines, expected }) => {
    const found = problems(yaml('secrets:', '  s:', ...lines));
    expect(
      found.some((p) => expected.test(p)),
      found.join('\n'),
    ).toBe(true);
  });

  it('accepts a kubeconfig whose keys leave out the optional CA', () => {
    const text = yaml(
      'secrets:',
      '  s:',
      '    kv: { mount: secret, path: zuul/x, keys: [token] }',
      '    render: { format: kubeconfig, server: "https://k8s:6443", cluster: e2e }',
    );
    expect(problems(text)).toEqual([]);
  });

  it('keeps the declaration on the secret', () => {
    const text = yaml(
      'secrets:',
      '  s:',
      KV,
      '    render: { format: netrc, machine: git.example.org, fields: { password: token } }',
    );
    const result = parsePolicyFiles([{ name: 'p.yaml', text }], { maxTtlSeconds: 3600 });
    expect(result.ok && result.set.secrets.get('s')?.render).toEqual({
      format: 'netrc',
      options: { machine: 'git.example.org' },
      fields: { username: 'username', password: 'token' },
      optionalFields: [],
    });
  });
});
