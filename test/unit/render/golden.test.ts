/**
 * Golden files per ready-file format: the exact text each format renders for a policy
 * declaration and a secret's data, read back the way the tools read it (YAML 1.1 like
 * PyYAML and go-yaml, JSON, docker's base64 `auth`). The values are dummies, no secrets.
 * `ZSB_UPDATE_GOLDEN=1` rewrites the files from the current output (review the diff).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatProblem, parsePolicyFiles } from '../../../src/policy/load.js';
import { renderFile } from '../../../src/render/render.js';

const GOLDEN = path.join(import.meta.dirname, 'golden');

/** The `render:` of one KV secret, loaded through the real policy loader. */
function specOf(render: string, keys?: string) {
  const text = `secrets:\n  s:\n    kv: { mount: secret, path: a/b${keys ? `, keys: [${keys}]` : ''} }\n    render:\n${render
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n')}\n`;
  const result = parsePolicyFiles([{ name: 'p.yaml', text }], { maxTtlSeconds: 3600 });
  if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
  const spec = result.set.secrets.get('s')?.render;
  if (spec === undefined) throw new Error('no render spec');
  return spec;
}

function rendered(render: string, data: Record<string, unknown>, keys?: string): string {
  const result = renderFile(specOf(render, keys), data);
  if (!result.ok) throw new Error(result.reason);
  return result.file.content;
}

function expectGolden(name: string, content: string): void {
  const file = path.join(GOLDEN, name);
  if (process.env.ZSB_UPDATE_GOLDEN === '1') writeFileSync(file, content);
  expect(content).toBe(readFileSync(file, 'utf8'));
}

const yaml11 = (text: string) => parse(text, { version: '1.1' });

const CREDENTIAL = {
  application_credential_id: 'dummy-app-cred-id-0001',
  application_credential_secret: 'dummy-app-cred-secret-0001',
  note: 'not in the file',
};

describe('clouds.yaml', () => {
  const render = [
    'format: clouds.yaml',
    'cloud: scs-compliance',
    'authUrl: https://keystone.example.org:5000/v3',
    'region: RegionOne',
    'interface: public',
  ].join('\n');

  it('renders an application credential as openstacksdk reads it', () => {
    const text = rendered(render, CREDENTIAL);
    expectGolden('clouds.yaml', text);
    expect(yaml11(text)).toEqual({
      clouds: {
        'scs-compliance': {
          auth_type: 'v3applicationcredential',
          auth: {
            auth_url: 'https://keystone.example.org:5000/v3',
            application_credential_id: 'dummy-app-cred-id-0001',
            application_credential_secret: 'dummy-app-cred-secret-0001',
          },
          region_name: 'RegionOne',
          interface: 'public',
          identity_api_version: 3,
        },
      },
    });
  });

  it('keeps values that YAML 1.1 would turn into booleans, numbers or syntax as strings', () => {
    const awkward = {
      application_credential_id: '0777',
      application_credential_secret: 'yes: #no\n"quoted" \\ ~',
    };
    const text = rendered(
      'format: clouds.yaml\ncloud: "on"\nauthUrl: http://127.0.0.1:5000/v3',
      awkward,
    );
    expectGolden('clouds-awkward.yaml', text);
    const cloud = yaml11(text).clouds.on;
    expect(cloud.auth.application_credential_id).toBe('0777');
    expect(cloud.auth.application_credential_secret).toBe(awkward.application_credential_secret);
    expect(cloud).not.toHaveProperty('region_name');
  });

  it('quotes a value `<<`, which YAML 1.1 readers (PyYAML) would take for a merge key', () => {
    const text = rendered(render, { ...CREDENTIAL, application_credential_secret: '<<' });
    expect(text).toContain('      application_credential_secret: "<<"\n');
    expect(yaml11(text).clouds['scs-compliance'].auth.application_credential_secret).toBe('<<');
  });

  it('takes the fields from other keys with fields:', () => {
    const text = rendered(
      `${render}\nfields: { application_credential_id: id, application_credential_secret: secret }`,
      { id: 'dummy-id', secret: 'dummy-secret' },
    );
    expect(yaml11(text).clouds['scs-compliance'].auth).toMatchObject({
      application_credential_id: 'dummy-id',
      application_credential_secret: 'dummy-secret',
    });
  });
});

describe('docker-config.json', () => {
  it('renders a registry robot login as docker login writes it', () => {
    const robot = { username: 'robot$scs+image-build', password: 'dummy-robot-token-0001' };
    const text = rendered('format: docker-config.json\nregistry: registry.scs.community', robot);
    expectGolden('docker-config.json', text);
    const auth = JSON.parse(text).auths['registry.scs.community'].auth as string;
    expect(Buffer.from(auth, 'base64').toString('utf8')).toBe(
      'robot$scs+image-build:dummy-robot-token-0001',
    );
  });
});

describe('kubeconfig', () => {
  const render = [
    'format: kubeconfig',
    'server: https://k8s.example.org:6443',
    'cluster: capi-e2e',
    'namespace: e2e',
  ].join('\n');

  it('renders a bearer token with the cluster CA', () => {
    const ca = '-----BEGIN CERTIFICATE-----\nZHVtbXk=\n-----END CERTIFICATE-----\n';
    const text = rendered(render, { token: 'dummy-sa-token-0001', ca_certificate: ca });
    expectGolden('kubeconfig.yaml', text);
    const config = yaml11(text);
    expect(config['current-context']).toBe('capi-e2e');
    expect(config.users[0].user.token).toBe('dummy-sa-token-0001');
    expect(
      Buffer.from(config.clusters[0].cluster['certificate-authority-data'], 'base64').toString(),
    ).toBe(ca);
    expect(config.contexts[0].context).toEqual({
      cluster: 'capi-e2e',
      user: 'capi-e2e',
      namespace: 'e2e',
    });
  });

  it('leaves the CA out when the secret has none', () => {
    const config = yaml11(rendered(render, { token: 'dummy-sa-token-0001' }));
    expect(config.clusters[0].cluster).toEqual({ server: 'https://k8s.example.org:6443' });
  });
});

describe('netrc', () => {
  it('renders one machine entry', () => {
    const text = rendered('format: netrc\nmachine: git.example.org', {
      username: 'ci-bot',
      password: 'dummy-netrc-password-0001',
    });
    expectGolden('netrc', text);
  });
});

describe('template', () => {
  it('substitutes the named fields verbatim and nothing else', () => {
    const render = [
      'format: template',
      'template: |',
      '  [registry]',
      '  user = {{ username }}',
      '  token = {{password}}',
      '  # {single braces} and }} stay text; {{ username }} again',
    ].join('\n');
    const text = rendered(
      render,
      { username: 'ci-bot', password: 'dummy <&> "token"' },
      'username, password',
    );
    expectGolden('template.ini', text);
  });
});
