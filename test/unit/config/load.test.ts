import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfig } from '../../../src/config/load.js';
import { configProblems } from '../../support/config.js';

const MINIMAL = {
  issuers: [{ issuer: 'https://zuul.example.org', audience: 'https://secrets.example.org' }],
  openbao: {
    address: 'https://bao.example.org:8200',
    auth: { method: 'token', tokenFile: '/run/secrets/bao-token' },
  },
};

describe('configuration', () => {
  it('fills every default of api.md and freezes the result', () => {
    const config = parseConfig(MINIMAL);
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.maxTtlSeconds).toBe(3600);
    expect(config.wrapTtlSeconds).toBe(60);
    expect(config.policies).toBe('./policies');
    expect(config.openbao.stateMount).toBe('secret');
    expect(config.openbao.statePrefix).toBe('zsb');
    const issuer = config.issuers[0];
    expect(issuer?.algorithms).toEqual(['RS256']);
    expect(issuer?.maxLifetimeSeconds).toBe(10800);
    expect(issuer?.clockToleranceSeconds).toBe(60);
    expect(config.http.maxTokenBytes).toBe(8192);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.issuers[0])).toBe(true);
  });

  it.each([
    ['unknown top-level key', { ...MINIMAL, extra: 1 }, '(root): unknown key(s) extra'],
    [
      'plain http issuer off loopback',
      { ...MINIMAL, issuers: [{ issuer: 'http://zuul.example.org', audience: 'a' }] },
      'issuers.0.issuer',
    ],
    [
      'issuer with trailing slash',
      { ...MINIMAL, issuers: [{ issuer: 'https://zuul.example.org/', audience: 'a' }] },
      'issuers.0.issuer',
    ],
    [
      'missing audience',
      { ...MINIMAL, issuers: [{ issuer: 'https://zuul.example.org' }] },
      'issuers.0.audience',
    ],
    [
      'alg none',
      { ...MINIMAL, issuers: [{ ...MINIMAL.issuers[0], algorithms: ['none'] }] },
      'issuers.0.algorithms.0',
    ],
    [
      'HS256',
      { ...MINIMAL, issuers: [{ ...MINIMAL.issuers[0], algorithms: ['HS256'] }] },
      'issuers.0.algorithms.0',
    ],
    [
      'plain http OpenBao off loopback',
      { ...MINIMAL, openbao: { ...MINIMAL.openbao, address: 'http://bao:8200' } },
      'openbao.address',
    ],
    [
      'both address and addresses',
      { ...MINIMAL, openbao: { ...MINIMAL.openbao, addresses: ['https://b:8200'] } },
      'openbao',
    ],
    [
      'unknown auth method',
      { ...MINIMAL, openbao: { address: 'https://b:8200', auth: { method: 'userpass' } } },
      'openbao.auth',
    ],
  ])('rejects %s, naming the key path', (_name, document, where) => {
    const problems = configProblems(document);
    expect(problems.some((p) => p.startsWith(where))).toBe(true);
  });

  it('accepts plain http only toward loopback', () => {
    const config = parseConfig({
      ...MINIMAL,
      issuers: [{ issuer: 'http://127.0.0.1:9000', audience: 'a' }],
      openbao: { ...MINIMAL.openbao, address: 'http://localhost:8200' },
    });
    expect(config.openbao.address).toBe('http://localhost:8200');
  });

  it.each([
    'http://127.attacker.example',
    'http://127.0.0.1.nip.io:8200',
    'http://localhost.attacker.example',
    'http://localhost.:8200',
    'http://[::2]:8200',
    'http://[::ffff:128.0.0.1]:8200',
    'http://0.0.0.0:8200',
    'http://128.0.0.1:8200',
  ])('refuses plain http toward %s (not a loopback literal) at every URL key', (url) => {
    const problems = configProblems({
      ...MINIMAL,
      issuers: [{ issuer: url, jwksUrl: url, audience: 'a' }],
      openbao: { ...MINIMAL.openbao, address: undefined, addresses: [url] },
    });
    for (const key of ['issuers.0.issuer', 'issuers.0.jwksUrl', 'openbao.addresses.0']) {
      expect(problems).toContainEqual(
        expect.stringMatching(new RegExp(`^${key}: must be an https`)),
      );
    }
    expect(configProblems({ ...MINIMAL, openbao: { ...MINIMAL.openbao, address: url } })).toEqual([
      expect.stringMatching(/^openbao\.address: must be an https URL/),
    ]);
  });

  it.each([
    'http://127.0.0.1:8200',
    'http://127.255.3.4:8200',
    'http://127.1:8200',
    'http://localhost:8200',
    'http://LOCALHOST:8200',
    'http://[::1]:8200',
    'http://[0:0:0:0:0:0:0:1]:8200',
    // IPv4-mapped: still only this machine.
    'http://[::ffff:127.0.0.1]:8200',
  ])('accepts plain http toward the loopback literal %s', (url) => {
    expect(
      configProblems({
        ...MINIMAL,
        issuers: [{ issuer: url, jwksUrl: `${url}/jwks`, audience: 'a' }],
        openbao: { ...MINIMAL.openbao, address: undefined, addresses: [url] },
      }),
    ).toEqual([]);
  });

  it('names the key but never echoes credentials in a refused URL', () => {
    const problems = configProblems({
      ...MINIMAL,
      openbao: { ...MINIMAL.openbao, address: 'http://user:s3cr3t-in-url@127.0.0.1:8200' },
    });
    expect(problems).toEqual([expect.stringMatching(/^openbao\.address: /)]);
    expect(problems.join('\n')).not.toContain('s3cr3t-in-url');
  });

  it('never echoes a value, even a token pasted in the wrong place', async () => {
    const canary = 's.canaryTokenValue1234567890';
    const dir = await mkdtemp(path.join(tmpdir(), 'zsb-config-'));
    const file = path.join(dir, 'config.yaml');
    await writeFile(
      file,
      `issuers:\n  - issuer: https://zuul.example.org\n    audience: x\nopenbao:\n  address: https://b:8200\n  auth: { method: token, tokenFile: /x, token: ${canary} }\nlisten: { port: "${canary}" }\n`,
    );
    let message = '';
    try {
      loadConfigFile(file);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('openbao.auth');
    expect(message).toContain('listen.port');
    expect(message).not.toContain(canary);
  });

  it('reports a YAML syntax error by position only', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'zsb-config-'));
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, 'issuers: [\n  secret-value: "unclosed\n');
    expect(() => loadConfigFile(file)).toThrow(/YAML syntax error at line \d+/);
    try {
      loadConfigFile(file);
    } catch (error) {
      expect((error as Error).message).not.toContain('secret-value');
    }
  });
});

describe('openbao.auth.method kubernetes', () => {
  const kubernetes = (auth: Record<string, unknown>) => ({
    ...MINIMAL,
    openbao: { address: 'https://bao.example.org:8200', auth: { method: 'kubernetes', ...auth } },
  });

  it("defaults to the pod's service account token at the kubernetes mount", () => {
    expect(parseConfig(kubernetes({ role: 'zsb' })).openbao.auth).toEqual({
      method: 'kubernetes',
      role: 'zsb',
      jwtFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      mount: 'kubernetes',
    });
  });

  it.each([
    ['without a role', {}, 'openbao.auth.role'],
    ['with an empty role', { role: '' }, 'openbao.auth.role'],
    [
      'with a key of another method',
      { role: 'zsb', tokenFile: '/t' },
      'openbao.auth: unknown key(s) tokenFile',
    ],
  ])('is refused %s, naming the key', (_name, auth, where) => {
    expect(configProblems(kubernetes(auth)).some((p) => p.startsWith(where))).toBe(true);
  });
});

describe('rotation settings', () => {
  it('has defaults, and refuses the secret-id rotation without AppRole', () => {
    expect(parseConfig(MINIMAL).rotation).toEqual({
      enabled: true,
      checkIntervalSeconds: 60,
      lockTtlSeconds: 120,
      attempts: 3,
    });
    expect(configProblems({ ...MINIMAL, rotation: { brokerSecretId: { role: 'zsb' } } })).toEqual([
      expect.stringContaining('rotation.brokerSecretId'),
    ]);
    const approle = {
      ...MINIMAL,
      openbao: {
        address: 'https://bao.example.org:8200',
        auth: { method: 'approle', roleIdFile: '/r', secretIdFile: '/s' },
      },
      rotation: { brokerSecretId: { role: 'zsb' } },
    };
    expect(parseConfig(approle).rotation.brokerSecretId).toEqual({ role: 'zsb', every: '7d' });
  });
});
