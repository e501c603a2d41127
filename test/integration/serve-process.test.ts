/** `zsb serve` as a real process: starts from a config file, serves, exits 0 on SIGTERM. */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { canaryValue } from '../support/canary.js';
import { issueCertificate, makeCa } from '../support/certs.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { until } from '../support/http.js';
import { cloudsPolicy } from '../support/kv-broker.js';
import { exitOf, ROOT, runZsb, spawnZsb, waitForOutput } from '../support/process.js';
import { realOpenBao, uniquePrefix } from '../support/real-openbao.js';

const bao = realOpenBao();
let dir = '';

/** A broker token file and a config file in `into`; returns the config's path. */
async function writeServeConfig(
  into: string,
  issuerUrl: string,
  policies: string,
  extra: string[] = [],
  listen = '{ host: 127.0.0.1, port: 0 }',
) {
  const token = await bao.admin.createToken({ policies: ['default'], ttlSeconds: 600 });
  const tokenFile = path.join(into, 'token');
  await writeFile(tokenFile, token.token, { mode: 0o600 });
  const config = path.join(into, 'config.yaml');
  await writeFile(
    config,
    [
      `listen: ${listen}`,
      `issuers: [{ issuer: "${issuerUrl}", audience: "https://secrets.example.org" }]`,
      `openbao: { address: "${bao.address}", auth: { method: token, tokenFile: "${tokenFile}" } }`,
      `policies: "${policies}"`,
      ...extra,
      '',
    ].join('\n'),
  );
  return config;
}
let issuer: ZuulIssuer | undefined;
afterAll(async () => {
  await issuer?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('serves until SIGTERM, then finishes and exits 0', async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-serve-'));
  issuer = await ZuulIssuer.start({ modulusLength: 2048 });
  const config = await writeServeConfig(dir, issuer.issuer, path.join(ROOT, 'policies'));
  const child = spawnZsb(['serve', '--config', config], { cwd: dir });
  const out = await waitForOutput(child, /"msg":"broker listening"/);
  const url = /"url":"(http:\/\/[^"]+)"/.exec(out)?.[1] ?? '';
  expect((await fetch(`${url}/healthz`)).status).toBe(200);
  const ready = (await (await fetch(`${url}/readyz`)).json()) as { ready: boolean };
  expect(ready.ready).toBe(true);
  child.kill('SIGTERM');
  expect(await exitOf(child)).toBe(0);
  await expect(fetch(`${url}/healthz`)).rejects.toThrow();
}, 60000);

it('refuses to start with an invalid configuration, naming the key', async () => {
  dir ||= await mkdtemp(path.join(tmpdir(), 'zsb-serve-'));
  const config = path.join(dir, 'bad.yaml');
  await writeFile(
    config,
    'issuers: []\nopenbao: { address: "http://bao.example.org", auth: { method: token, tokenFile: /x } }\n',
  );
  const result = await runZsb(['serve', '--config', config], { cwd: dir });
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('issuers: must be at least 1');
  expect(result.stderr).toContain('openbao.address');
});

it.each([
  ['openbao.auth.tokenFile', 'token', 0o644],
  ['audit.hmacKeyFile', 'hmac-key', 0o660],
  ['listen.tls.keyFile', 'tls.key', 0o604],
])(
  'refuses to start when %s is readable by group or others',
  async (key, name, mode) => {
    const work = await mkdtemp(path.join(tmpdir(), 'zsb-modes-'));
    try {
      const ca = await makeCa(work, 'ca');
      const tls = await issueCertificate(
        work,
        ca,
        'tls',
        '127.0.0.1',
        'subjectAltName=IP:127.0.0.1\n',
      );
      const hmacKey = path.join(work, 'hmac-key');
      const hmacValue = canaryValue('hmac-key');
      await writeFile(hmacKey, hmacValue, { mode: 0o600 });
      const config = await writeServeConfig(
        work,
        'https://zuul.example.org',
        path.join(ROOT, 'policies'),
        [`audit: { stdout: true, hmacKeyFile: "${hmacKey}" }`],
        `{ host: 127.0.0.1, port: 0, tls: { certFile: "${tls.cert}", keyFile: "${tls.key}" } }`,
      );
      const file = path.join(work, name);
      await chmod(file, mode);
      const result = await runZsb(['serve', '--config', config], { cwd: work });
      expect(result.code).toBe(1);
      const octal = `0${mode.toString(8)}`;
      expect(result.stderr).toContain(
        `${key}: ${file} is accessible to group or others (mode ${octal})`,
      );
      expect(result.stderr).toContain(`chmod 600 ${file}`);
      expect(result.stdout).not.toContain('broker listening');
      expect(result.stderr).not.toContain(hmacValue);
      expect(result.stderr).not.toContain(await readFile(path.join(work, 'token'), 'utf8'));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
  30000,
);

it('exits 2 on a usage error', async () => {
  const result = await runZsb(['serve', '--no-such-flag'], { cwd: ROOT });
  expect(result.code).toBe(2);
});

it('reloads policies on SIGHUP; a broken set keeps the last good one serving', async () => {
  const work = await mkdtemp(path.join(tmpdir(), 'zsb-reload-'));
  const reloadIssuer = await ZuulIssuer.start({ modulusLength: 2048 });
  const policies = path.join(work, 'policies');
  await mkdir(policies);
  const good = (secret: string) =>
    `secrets:\n  ${secret}: { kv: { mount: secret, path: reload/${secret} } }\ngrants:\n  - name: g\n    match: { tenant: scs, pipeline: periodic-daily }\n    allow: [${secret}]\n`;
  await writeFile(path.join(policies, 'p.yaml'), good('first'));
  // The file watcher is covered by the policy store's unit tests; here only SIGHUP reloads.
  const config = await writeServeConfig(work, reloadIssuer.issuer, policies, [
    'watchPolicies: false',
  ]);
  const child = spawnZsb(['serve', '--config', config], { cwd: work });
  try {
    const out = await waitForOutput(child, /"msg":"broker listening"/);
    const url = /"url":"(http:\/\/[^"]+)"/.exec(out)?.[1] ?? '';
    const readyz = async () => {
      const res = await fetch(`${url}/readyz`);
      const body = (await res.json()) as {
        checks: { policies: { status: string; detail: string } };
      };
      return { http: res.status, ...body.checks.policies };
    };
    const until = async (predicate: (r: Awaited<ReturnType<typeof readyz>>) => boolean) => {
      for (let i = 0; i < 100; i++) {
        const r = await readyz();
        if (predicate(r)) return r;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error('readiness never reached the expected state');
    };
    const allowed = async () => {
      const res = await fetch(`${url}/v1/whoami`, {
        headers: { authorization: `Bearer ${reloadIssuer.mint()}` },
      });
      return ((await res.json()) as { allowed: string[] }).allowed;
    };
    expect(await allowed()).toEqual(['first']);

    await writeFile(
      path.join(policies, 'p.yaml'),
      'secrets:\n  broken: { kv: { mount: secret } }\n',
    );
    child.kill('SIGHUP');
    const degraded = await until((r) => r.status === 'degraded');
    expect(degraded.http).toBe(200);
    expect(degraded.detail).toMatch(/p\.yaml:\d+:\d+/);
    expect(await allowed()).toEqual(['first']);

    await writeFile(path.join(policies, 'p.yaml'), good('second'));
    child.kill('SIGHUP');
    await until((r) => r.status === 'ok');
    expect(await allowed()).toEqual(['second']);
  } finally {
    child.kill('SIGTERM');
    await exitOf(child);
    await reloadIssuer.close();
    await rm(work, { recursive: true, force: true });
  }
}, 60000);

it('SIGTERM lets a request in flight finish, refuses new connections, and exits 0', async () => {
  const prefix = uniquePrefix('drain');
  const workDir = await mkdtemp(path.join(tmpdir(), 'zsb-drain-'));
  const secret = { username: 'ci', password: canaryValue('drain') };
  await bao.admin.kvWrite('secret', `${prefix}/clouds`, secret);
  await bao.admin.putAclPolicy(
    `zsb-${prefix}`,
    `path "secret/data/${prefix}/*" { capabilities = ["read"] }\n`,
  );
  const token = await bao.admin.createToken({
    policies: [`zsb-${prefix}`],
    ttlSeconds: 600,
    orphan: true,
  });
  await writeFile(path.join(workDir, 'token'), token.token, { mode: 0o600 });
  await mkdir(path.join(workDir, 'policies'));
  await writeFile(path.join(workDir, 'policies', 'p.yaml'), cloudsPolicy(prefix, 'drain'));
  const proxy = await FaultProxy.start(bao.address);
  const own = await ZuulIssuer.start({ modulusLength: 2048 });
  try {
    const config = path.join(workDir, 'config.yaml');
    await writeFile(
      config,
      [
        'listen: { host: 127.0.0.1, port: 0 }',
        `issuers: [{ issuer: "${own.issuer}", audience: "https://secrets.example.org" }]`,
        `openbao: { address: "${proxy.url}", auth: { method: token, tokenFile: "${path.join(workDir, 'token')}" } }`,
        `policies: "${path.join(workDir, 'policies')}"`,
        '',
      ].join('\n'),
    );
    const child = spawnZsb(['serve', '--config', config], { cwd: workDir });
    const out = await waitForOutput(child, /"msg":"broker listening"/);
    const url = /"url":"(http:\/\/[^"]+)"/.exec(out)?.[1] ?? '';
    // OpenBao answers slowly from now on: the fetch below is in flight during SIGTERM.
    await proxy.setMode({ kind: 'delay', ms: 1500 });
    proxy.resetCount();
    const inFlight = fetch(`${url}/v1/secrets/clouds`, {
      headers: { authorization: `Bearer ${own.mint()}` },
    });
    await until(async () => proxy.seen.some((r) => r.path.includes(`${prefix}/clouds`)));
    child.kill('SIGTERM');
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { data: unknown }).data).toEqual(secret);
    expect(await exitOf(child)).toBe(0);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  } finally {
    await own.close();
    await proxy.close();
    await rm(workDir, { recursive: true, force: true });
  }
}, 60000);
