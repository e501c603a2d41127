/**
 * Client certificates toward OpenBao: a real `bao server -dev` with a second listener, from
 * `-config`, that requires and verifies a client certificate of a CA generated here. The
 * broker reaches it only with `openbao.tls.certFile` + `keyFile`; with `caFile` alone (or a
 * certificate of another CA) the TLS handshake is refused and nothing is read.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { findBaoBinary, freeLoopbackPort } from '../../src/dev/openbao-dev-server.js';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { createLogger, startBroker } from '../../src/main.js';
import { createOpenBaoClient } from '../../src/openbao/client.js';
import { connectOpenBao } from '../../src/openbao/connect.js';
import { OpenBaoError } from '../../src/openbao/errors.js';
import { LogCapture } from '../support/app.js';
import { canaryValue, registerCanary } from '../support/canary.js';
import { issueCertificate, makeCa } from '../support/certs.js';
import { brokerCall, until } from '../support/http.js';

const AUDIENCE = 'https://secrets.example.org';
const ROOT_TOKEN = `root-${randomBytes(12).toString('hex')}`;
registerCanary(ROOT_TOKEN);
const SECRET = { password: canaryValue('mtls') };
const KV_PATH = `mtls-${randomBytes(4).toString('hex')}/clouds`;

let dir: string;
let bao: ChildProcess | undefined;
/** The dev listener (plain HTTP), used only to seed with the root token. */
let plainAddress: string;
/** The listener that requires a client certificate. */
let mtlsAddress: string;
let tokenFile: string;
const pem = {
  ca: '',
  clientCert: '',
  clientKey: '',
  rogueCert: '',
  rogueKey: '',
};

/** Two free loopback ports, not adjacent: each listener also takes its port + 1 for clustering. */
async function twoPorts(): Promise<[number, number]> {
  const first = await freeLoopbackPort();
  for (;;) {
    const second = await freeLoopbackPort();
    if (Math.abs(second - first) > 1) return [first, second];
  }
}

const client = (address: string, tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer }) =>
  createOpenBaoClient({
    addresses: [address],
    timeoutMs: 3000,
    maxConnections: 2,
    maxAttempts: 1,
    ...(tls ? { tls } : {}),
    token: () => ROOT_TOKEN,
  });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-bao-mtls-'));
  const ca = await makeCa(dir, 'ca');
  pem.ca = ca.cert;
  const server = await issueCertificate(
    dir,
    ca,
    'server',
    '127.0.0.1',
    'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  const clientAuth = 'extendedKeyUsage=clientAuth\n';
  const clientPair = await issueCertificate(dir, ca, 'client', 'zsb-broker', clientAuth);
  pem.clientCert = clientPair.cert;
  pem.clientKey = clientPair.key;
  // A well-formed client certificate from a CA the listener does not trust.
  const rogueCa = await makeCa(dir, 'rogue-ca');
  const rogue = await issueCertificate(dir, rogueCa, 'rogue', 'zsb-broker', clientAuth);
  pem.rogueCert = rogue.cert;
  pem.rogueKey = rogue.key;

  const [plainPort, mtlsPort] = await twoPorts();
  plainAddress = `http://127.0.0.1:${plainPort}`;
  mtlsAddress = `https://127.0.0.1:${mtlsPort}`;
  const configFile = path.join(dir, 'bao-mtls.hcl');
  await writeFile(
    configFile,
    [
      'listener "tcp" {',
      `  address = "127.0.0.1:${mtlsPort}"`,
      `  tls_cert_file = ${JSON.stringify(server.cert)}`,
      `  tls_key_file = ${JSON.stringify(server.key)}`,
      `  tls_client_ca_file = ${JSON.stringify(pem.ca)}`,
      '  tls_require_and_verify_client_cert = true',
      '}',
      '',
    ].join('\n'),
  );
  // stdio ignored: the dev server prints its root token and unseal key.
  bao = spawn(
    findBaoBinary(),
    [
      'server',
      '-dev',
      `-dev-root-token-id=${ROOT_TOKEN}`,
      `-dev-listen-address=127.0.0.1:${plainPort}`,
      '-dev-no-store-token',
      `-config=${configFile}`,
    ],
    { stdio: 'ignore', env: { ...process.env, BAO_ADDR: '', VAULT_ADDR: '', BAO_TOKEN: '' } },
  );
  const plain = client(plainAddress);
  await until(async () => (await plain.health()).status === 'ok', 30000);
  const mutual = client(mtlsAddress, {
    ca: await readFile(pem.ca),
    cert: await readFile(pem.clientCert),
    key: await readFile(pem.clientKey),
  });
  await until(async () => (await mutual.health()).status === 'ok', 30000);

  // Seeded through the plain dev listener only.
  await plain.kvWrite('secret', KV_PATH, SECRET);
  tokenFile = path.join(dir, 'token');
  await writeFile(tokenFile, ROOT_TOKEN, { mode: 0o600 });
}, 90000);

afterAll(async () => {
  bao?.kill('SIGTERM');
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('client certificates toward an OpenBao listener that requires them', () => {
  it('the client reads only when it presents a certificate of the trusted CA', async () => {
    const ca = await readFile(pem.ca);

    const caOnly = client(mtlsAddress, { ca });
    expect(await caOnly.health()).toMatchObject({ status: 'unreachable' });
    const refused = await caOnly.kvRead('secret', KV_PATH).then(
      () => undefined,
      (error: unknown) => error,
    );
    // No HTTP answer at all: the handshake is refused.
    expect(refused).toBeInstanceOf(OpenBaoError);
    expect(refused).toMatchObject({ kind: 'unavailable', status: 0 });
    expect(String(refused)).not.toContain(ROOT_TOKEN);

    const rogue = client(mtlsAddress, {
      ca,
      cert: await readFile(pem.rogueCert),
      key: await readFile(pem.rogueKey),
    });
    expect(await rogue.health()).toMatchObject({ status: 'unreachable' });
    await expect(rogue.kvRead('secret', KV_PATH)).rejects.toMatchObject({
      kind: 'unavailable',
      status: 0,
    });

    const mutual = client(mtlsAddress, {
      ca,
      cert: await readFile(pem.clientCert),
      key: await readFile(pem.clientKey),
    });
    expect(await mutual.health()).toMatchObject({ status: 'ok' });
    expect(await mutual.kvRead('secret', KV_PATH)).toMatchObject({ data: SECRET, version: 1 });
  });

  it('openbao.tls files: caFile alone cannot connect, caFile + certFile + keyFile reads', async () => {
    const logs = new LogCapture();
    const logger = createLogger('info', logs);
    const settings = {
      address: mtlsAddress,
      timeoutMs: 3000,
      maxConnections: 2,
      auth: { method: 'token' as const, tokenFile },
    };

    const caOnly = await connectOpenBao({ ...settings, tls: { caFile: pem.ca } }, logger).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(caOnly).toBeInstanceOf(OpenBaoError);
    expect(caOnly).toMatchObject({ kind: 'unavailable', status: 0 });

    const connection = await connectOpenBao(
      { ...settings, tls: { caFile: pem.ca, certFile: pem.clientCert, keyFile: pem.clientKey } },
      logger,
    );
    try {
      expect(connection.credential.status()).toMatchObject({ status: 'ok' });
      expect(await connection.openbao.kvRead('secret', KV_PATH)).toMatchObject({
        data: SECRET,
        version: 1,
      });
    } finally {
      connection.credential.stop();
    }
    expect(logs.text()).not.toContain(ROOT_TOKEN);
    expect(logs.text()).not.toContain('PRIVATE KEY');
  });

  it('a broker with only openbao.tls.caFile does not start; with the client certificate it is ready and serves a job', async () => {
    const issuer = await ZuulIssuer.start({ modulusLength: 2048 });
    const policyDir = path.join(dir, 'policies');
    await mkdir(policyDir, { recursive: true });
    await writeFile(
      path.join(policyDir, 'mtls.yaml'),
      [
        'secrets:',
        '  mtls-clouds:',
        `    kv: { mount: secret, path: ${KV_PATH} }`,
        'grants:',
        '  - name: mtls',
        '    match:',
        '      tenant: scs',
        '      project: github.com/SovereignCloudStack/standards',
        '      secret: openbao-id',
        '    allow: [mtls-clouds]',
        '    ttl: 15m',
        '',
      ].join('\n'),
    );
    const logs = new LogCapture();
    const config = (tls: Record<string, string>) =>
      parseConfig({
        listen: { host: '127.0.0.1', port: 0 },
        issuers: [{ issuer: issuer.issuer, audience: AUDIENCE }],
        openbao: {
          address: mtlsAddress,
          timeoutMs: 3000,
          auth: { method: 'token', tokenFile },
          tls,
        },
        policies: policyDir,
        watchPolicies: false,
      });
    try {
      // Its own credential is checked at start (lookup-self), over the refused handshake.
      await expect(
        startBroker(config({ caFile: pem.ca }), { logger: createLogger('info', logs) }),
      ).rejects.toMatchObject({ kind: 'unavailable', status: 0 });

      const broker = await startBroker(
        config({ caFile: pem.ca, certFile: pem.clientCert, keyFile: pem.clientKey }),
        { logger: createLogger('info', logs) },
      );
      try {
        const ready = await fetch(`${broker.url}/readyz`);
        const body = (await ready.json()) as { checks: { openbao: { status: string } } };
        expect(ready.status).toBe(200);
        expect(body.checks.openbao.status).toBe('ok');

        const res = await brokerCall(broker.url, 'GET', '/v1/secrets/mtls-clouds', issuer.mint());
        expect(res).toEqual({
          status: 200,
          body: { data: SECRET, version: 1, lease: null, expiresAt: null },
        });
      } finally {
        await broker.close();
      }
    } finally {
      await issuer.close();
    }
    expect(logs.text()).not.toContain(ROOT_TOKEN);
    expect(logs.text()).not.toContain('PRIVATE KEY');
  });
});
