/**
 * The listener's certificate is reloaded without a restart: `zsb serve` on SIGHUP, and the
 * broker on a change of the files (rename into place, as cert-manager and Kubernetes do).
 * An invalid pair is logged and the previous certificate keeps serving. Certificates are
 * made at test time with the openssl CLI.
 */
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { createLogger, startBroker } from '../../src/main.js';
import { LogCapture } from '../support/app.js';
import { type CertPair, issueCertificate, makeCa } from '../support/certs.js';
import { until } from '../support/http.js';
import { exitOf, ROOT, spawnZsb, waitForOutput } from '../support/process.js';
import { realOpenBao } from '../support/real-openbao.js';

const bao = realOpenBao();
let dir: string;
let certs: string;
let issuer: ZuulIssuer;

let ca: CertPair;

/** A leaf for 127.0.0.1 signed by the test CA: `{name}.crt`, `{name}.key`. */
function leaf(name: string) {
  return issueCertificate(certs, ca, name, name, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
}

async function fingerprintOf(name: string) {
  return new X509Certificate(await readFile(path.join(certs, `${name}.crt`))).fingerprint256;
}

/** The fingerprint of the certificate a fresh TLS connection sees, trusting only the test CA. */
async function servedFingerprint(url: string): Promise<string> {
  const ca = await readFile(path.join(certs, 'ca.crt'));
  return new Promise((resolve, reject) => {
    const req = request(`${url}/healthz`, { ca, agent: false }, (res) => {
      const fp = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
      res.resume();
      res.on('end', () => resolve(fp));
    });
    req.on('error', reject);
    req.end();
  });
}

async function brokerConfig(
  work: string,
  tls: { certFile: string; keyFile: string },
  watch: boolean,
) {
  const token = await bao.admin.createToken({ policies: ['default'], ttlSeconds: 600 });
  await writeFile(path.join(work, 'token'), token.token, { mode: 0o600 });
  return {
    listen: { host: '127.0.0.1', port: 0, tls: { ...tls, watch } },
    issuers: [{ issuer: issuer.issuer, audience: 'https://secrets.example.org' }],
    openbao: {
      address: bao.address,
      auth: { method: 'token', tokenFile: path.join(work, 'token') },
    },
    policies: path.join(ROOT, 'policies'),
    watchPolicies: false,
  };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-tls-'));
  certs = path.join(dir, 'certs');
  await mkdir(certs);
  ca = await makeCa(certs, 'ca');
  await leaf('first');
  await leaf('second');
  await leaf('third');
  issuer = await ZuulIssuer.start({ modulusLength: 2048 });
});

afterAll(async () => {
  await issuer?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('zsb serve swaps in a new certificate on SIGHUP and keeps the old one when the new is invalid', async () => {
  const work = await mkdtemp(path.join(dir, 'serve-'));
  const live = { certFile: path.join(work, 'tls.crt'), keyFile: path.join(work, 'tls.key') };
  await copyFile(path.join(certs, 'first.crt'), live.certFile);
  await copyFile(path.join(certs, 'first.key'), live.keyFile);
  const configFile = path.join(work, 'config.json');
  await writeFile(configFile, JSON.stringify(await brokerConfig(work, live, false)));
  const child = spawnZsb(['serve', '--config', configFile], { cwd: work });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString('utf8');
  });
  try {
    const out = await waitForOutput(child, /"msg":"broker listening"/);
    const url = /"url":"(https:\/\/[^"]+)"/.exec(out)?.[1] ?? '';
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await servedFingerprint(url)).toBe(await fingerprintOf('first'));

    await copyFile(path.join(certs, 'second.crt'), live.certFile);
    await copyFile(path.join(certs, 'second.key'), live.keyFile);
    child.kill('SIGHUP');
    const second = await fingerprintOf('second');
    await until(async () => (await servedFingerprint(url)) === second, 10000);

    // A key that does not belong to the certificate, then garbage: rejected, still serving.
    await copyFile(path.join(certs, 'third.crt'), live.certFile);
    child.kill('SIGHUP');
    await until(async () => output.includes('listener certificate reload rejected'), 10000);
    await writeFile(live.certFile, 'not a certificate');
    child.kill('SIGHUP');
    await until(
      async () => output.split('listener certificate reload rejected').length >= 3,
      10000,
    );
    expect(await servedFingerprint(url)).toBe(second);
    expect(child.exitCode).toBeNull();
    // The rejection names the files and a code, never the key's content.
    const key = await readFile(path.join(certs, 'second.key'), 'utf8');
    const keyBody = key.split('\n')[1] ?? '';
    expect(keyBody.length).toBeGreaterThan(20);
    expect(output).not.toContain(keyBody);
  } finally {
    child.kill('SIGTERM');
    expect(await exitOf(child)).toBe(0);
  }
}, 60000);

it('the broker picks up certificate files renamed into place, without a signal', async () => {
  const work = await mkdtemp(path.join(dir, 'watch-'));
  const live = { certFile: path.join(work, 'tls.crt'), keyFile: path.join(work, 'tls.key') };
  await copyFile(path.join(certs, 'first.crt'), live.certFile);
  await copyFile(path.join(certs, 'first.key'), live.keyFile);
  const logs = new LogCapture();
  const broker = await startBroker(parseConfig(await brokerConfig(work, live, true)), {
    logger: createLogger('info', logs),
  });
  try {
    expect(await servedFingerprint(broker.url)).toBe(await fingerprintOf('first'));
    // Key first, then certificate, each written aside and renamed (atomic on one filesystem).
    await copyFile(path.join(certs, 'third.key'), `${live.keyFile}.new`);
    await rename(`${live.keyFile}.new`, live.keyFile);
    await copyFile(path.join(certs, 'third.crt'), `${live.certFile}.new`);
    await rename(`${live.certFile}.new`, live.certFile);
    const third = await fingerprintOf('third');
    await until(async () => (await servedFingerprint(broker.url)) === third, 10000);
    expect(logs.entries().some((e) => e.msg === 'listener certificate reloaded')).toBe(true);
  } finally {
    await broker.close();
  }
}, 60000);
