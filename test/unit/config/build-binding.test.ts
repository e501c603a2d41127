/**
 * `issuers[].buildBinding` (ADR 0014): its defaults and bounds, the URL rules it shares
 * with the key set, and the zuul-web auth token file (private, one bearer token).
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readZuulWebTokens } from '../../../src/broker/build-binding.js';
import { parseConfig } from '../../../src/config/load.js';
import { configProblems } from '../../support/config.js';

function config(buildBinding: unknown, extra: Record<string, unknown> = {}) {
  return {
    issuers: [
      { issuer: 'https://zuul.example.org', audience: 'https://secrets.example.org', buildBinding },
    ],
    openbao: {
      address: 'https://bao.example.org:8200',
      auth: { method: 'token', tokenFile: '/run/secrets/bao-token' },
    },
    ...extra,
  };
}

describe('issuers[].buildBinding', () => {
  it('{} turns it on with bounded defaults', () => {
    expect(parseConfig(config({})).issuers[0]?.buildBinding).toEqual({
      timeoutMs: 3000,
      maxBytes: 65536,
      cacheSeconds: 5,
      startWaitSeconds: 15,
      maxEntries: 10000,
    });
  });

  it.each([
    ['plain http to another host', { webUrl: 'http://zuul.example.org' }],
    ['credentials in the URL', { webUrl: 'https://u:p@zuul.example.org' }],
    ['a trailing slash', { webUrl: 'https://zuul.example.org/' }],
    ['a query', { webUrl: 'https://zuul.example.org/x?tenant=a' }],
    ['a cache longer than a minute', { cacheSeconds: 61 }],
    ['an unknown key', { follow: true }],
  ])('refuses %s', (_what, binding) => {
    expect(configProblems(config(binding)).length).toBeGreaterThan(0);
  });

  it('accepts loopback http and https on another host (an internal address)', () => {
    expect(configProblems(config({ webUrl: 'http://127.0.0.1:9000' }))).toEqual([]);
    expect(configProblems(config({ webUrl: 'https://zuul-web.internal:9000/zuul' }))).toEqual([]);
  });

  it('refuses a start wait that would outlast the request timeout', () => {
    const problems = configProblems(
      config({ startWaitSeconds: 30 }, { http: { requestTimeoutMs: 20000 } }),
    );
    expect(problems.join('\n')).toContain('startWaitSeconds plus timeoutMs');
  });
});

describe('the zuul-web auth token file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'zsb-zuul-web-token-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  const issuersWith = (file: string) => parseConfig(config({ authTokenFile: file })).issuers;

  it('is read once, trimmed, per issuer', async () => {
    const file = path.join(dir, 'ok');
    await writeFile(file, 'eyJhbGciOi.eyJzdWIi.c2ln\n', { mode: 0o600 });
    expect(readZuulWebTokens(issuersWith(file))).toEqual(
      new Map([['https://zuul.example.org', 'eyJhbGciOi.eyJzdWIi.c2ln']]),
    );
  });

  it('must be private to the broker', async () => {
    const file = path.join(dir, 'open');
    await writeFile(file, 'eyJ.a.b\n');
    await chmod(file, 0o644);
    expect(() => readZuulWebTokens(issuersWith(file))).toThrow(/chmod 600/);
  });

  it('must hold one bearer token, without saying what it held', async () => {
    const file = path.join(dir, 'two');
    await writeFile(file, 'first-token\nsecond line\n', { mode: 0o600 });
    let message = '';
    try {
      readZuulWebTokens(issuersWith(file));
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('must hold one bearer token');
    expect(message).not.toContain('first-token');
  });
});
