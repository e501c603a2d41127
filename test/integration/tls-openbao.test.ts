/**
 * TLS toward OpenBao: a real `bao server -dev -dev-tls` with its own generated CA. The
 * broker's client trusts it only with `openbao.tls.caFile`; a broker configured so reports
 * OpenBao ready.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { findBaoBinary, freeLoopbackPort } from '../../src/dev/openbao-dev-server.js';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { createLogger, startBroker } from '../../src/main.js';
import { createOpenBaoClient } from '../../src/openbao/client.js';
import { LogCapture } from '../support/app.js';
import { until } from '../support/http.js';
import { ROOT } from '../support/process.js';

const ROOT_TOKEN = `root-${randomBytes(8).toString('hex')}`;
let dir: string;
let bao: ChildProcess;
let address: string;
let caFile: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-bao-tls-'));
  const certDir = path.join(dir, 'bao-tls');
  await mkdir(certDir);
  const port = await freeLoopbackPort();
  address = `https://127.0.0.1:${port}`;
  bao = spawn(
    findBaoBinary(),
    [
      'server',
      '-dev',
      '-dev-tls',
      `-dev-tls-cert-dir=${certDir}`,
      `-dev-listen-address=127.0.0.1:${port}`,
      `-dev-root-token-id=${ROOT_TOKEN}`,
    ],
    { stdio: 'ignore', env: { ...process.env, BAO_ADDR: '', VAULT_ADDR: '' } },
  );
  // The CA file appears before the listener is up; then wait for a trusted health answer.
  await until(async () => (await readdir(certDir)).some((f) => f.includes('ca')), 20000);
  const ca = (await readdir(certDir)).find((f) => f.includes('ca') && f.endsWith('.pem'));
  caFile = path.join(certDir, ca ?? 'missing-ca.pem');
  const trusting = createOpenBaoClient({
    addresses: [address],
    timeoutMs: 2000,
    maxConnections: 2,
    tls: { ca: await readFile(caFile) },
    token: () => ROOT_TOKEN,
  });
  await until(async () => (await trusting.health()).status === 'ok', 20000);
}, 60000);

afterAll(async () => {
  bao?.kill('SIGTERM');
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('reaches an OpenBao with a private CA only when the CA is configured', async () => {
  const options = { addresses: [address], timeoutMs: 2000, maxConnections: 2, token: () => '' };
  const untrusting = createOpenBaoClient(options);
  expect(await untrusting.health()).toMatchObject({ status: 'unreachable' });
  const trusting = createOpenBaoClient({ ...options, tls: { ca: await readFile(caFile) } });
  expect(await trusting.health()).toMatchObject({ status: 'ok' });
});

it('a broker with openbao.tls.caFile serves and reports OpenBao ready', async () => {
  const tokenFile = path.join(dir, 'token');
  await writeFile(tokenFile, ROOT_TOKEN, { mode: 0o600 });
  const issuer = await ZuulIssuer.start({ modulusLength: 2048 });
  const broker = await startBroker(
    parseConfig({
      listen: { host: '127.0.0.1', port: 0 },
      issuers: [{ issuer: issuer.issuer, audience: 'https://secrets.example.org' }],
      openbao: { address, auth: { method: 'token', tokenFile }, tls: { caFile } },
      policies: path.join(ROOT, 'policies'),
      watchPolicies: false,
    }),
    { logger: createLogger('info', new LogCapture()) },
  );
  try {
    const res = await fetch(`${broker.url}/readyz`);
    const body = (await res.json()) as { checks: { openbao: { status: string } } };
    expect(body.checks.openbao.status).toBe('ok');
  } finally {
    await broker.close();
    await issuer.close();
  }
});

it('refuses a client certificate without its key', () => {
  expect(() =>
    parseConfig({
      issuers: [{ issuer: 'http://127.0.0.1:1', audience: 'a' }],
      openbao: {
        address,
        auth: { method: 'token', tokenFile: '/x' },
        tls: { certFile: '/etc/zsb/bao-client.crt' },
      },
    }),
  ).toThrow(/openbao\.tls/);
});
