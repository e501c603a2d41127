/**
 * `openbao.auth.method: kubernetes` against a real OpenBao: the login OpenBao's kubernetes
 * method takes (`{ role, jwt }` at `auth/{mount}/login`), here served by its jwt method
 * configured with the public key that signs the service account tokens, as a cluster's
 * service account issuer would. OpenBao's kubernetes method itself asks the Kubernetes API
 * (TokenReview) and cannot run here; the broker's side of both is the same call.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpenBaoClient } from '../../src/openbao/client.js';
import { type BrokerCredential, startBrokerCredential } from '../../src/openbao/credential.js';
import { captureText, registerCanary, registerToken } from '../support/canary.js';
import { until } from '../support/http.js';
import { baoRequest, realOpenBao, uniquePrefix } from '../support/real-openbao.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const SUBJECT = 'system:serviceaccount:zsb:zuul-secrets-broker';

let dir: string;
let mount: string;
let key: KeyObject;
const errors: string[] = [];
/** Every line the credential logs goes to the canary scan; errors are also kept. */
const log = (obj: object, msg: string) =>
  captureText('credential log', JSON.stringify({ ...obj, msg }));
const logger = {
  info: log,
  warn: log,
  error: (obj: object, msg: string) => {
    errors.push(msg);
    log(obj, msg);
  },
};

/** A token shaped like a projected service account token. */
async function serviceAccountToken(audience = 'openbao', subject = SUBJECT): Promise<string> {
  const token = await new SignJWT({
    'kubernetes.io': { namespace: 'zsb', serviceaccount: { name: 'zuul-secrets-broker' } },
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'sa-key' })
    .setIssuer(ISSUER)
    .setSubject(subject)
    .setAudience([audience])
    .setIssuedAt()
    .setNotBefore('0s')
    .setExpirationTime('10m')
    .sign(key);
  registerToken(token);
  return token;
}

beforeAll(async () => {
  const bao = realOpenBao();
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  key = pair.privateKey;
  mount = uniquePrefix('k8s');
  const root = { token: bao.rootToken };
  const call = async (method: string, route: string, body: unknown) => {
    const res = await baoRequest(bao.address, method, route, { ...root, body });
    expect(res.status, `${route}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  };
  await call('POST', `sys/auth/${mount}`, { type: 'jwt' });
  await call('POST', `auth/${mount}/config`, {
    jwt_validation_pubkeys: [pair.publicKey.export({ type: 'spki', format: 'pem' })],
    bound_issuer: ISSUER,
  });
  await bao.admin.putAclPolicy(
    `${mount}-broker`,
    `path "secret/data/${mount}/*" { capabilities = ["read"] }\n`,
  );
  await call('POST', `auth/${mount}/role/zsb`, {
    role_type: 'jwt',
    bound_audiences: ['openbao'],
    bound_subject: SUBJECT,
    user_claim: 'sub',
    token_policies: [`${mount}-broker`],
    // Short, so that the broker logs in again within the test (at two thirds of it).
    token_ttl: 3,
    token_max_ttl: 3,
  });
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-k8s-auth-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function start(jwtFile: string): Promise<BrokerCredential> {
  const bao = realOpenBao();
  const client = createOpenBaoClient({
    addresses: [bao.address],
    timeoutMs: 10000,
    maxConnections: 4,
    token: () => '',
  });
  return startBrokerCredential(
    client,
    { method: 'kubernetes', role: 'zsb', jwtFile, mount },
    logger,
  );
}

describe('openbao.auth.method kubernetes', () => {
  it('logs in with the service account token and again, from the file as it is then, before expiry', async () => {
    const bao = realOpenBao();
    const jwtFile = path.join(dir, 'token');
    // The kubelet's mode for a projected token without fsGroup: accepted (see credential.ts).
    await writeFile(jwtFile, await serviceAccountToken(), { mode: 0o644 });
    const credential = await start(jwtFile);
    try {
      const first = credential.token();
      registerCanary(first);
      const self = await baoRequest(bao.address, 'GET', 'auth/token/lookup-self', { token: first });
      expect(self.status).toBe(200);
      expect((self.body.data as { policies: string[] }).policies).toContain(`${mount}-broker`);
      expect(credential.status().status).toBe('ok');

      // The kubelet rotated the file to something OpenBao refuses: the next login fails,
      // the instance reports it, and it recovers once the file is good again.
      await writeFile(jwtFile, await serviceAccountToken('someone-else'));
      await until(async () => credential.status().status !== 'ok', 10000);
      expect(errors.some((e) => e.startsWith('OpenBao credential refresh failed'))).toBe(true);
      await writeFile(jwtFile, await serviceAccountToken());
      await until(
        async () => credential.status().status === 'ok' && credential.token() !== first,
        15000,
      );
      registerCanary(credential.token());
      const again = await baoRequest(bao.address, 'GET', 'auth/token/lookup-self', {
        token: credential.token(),
      });
      expect(again.status).toBe(200);
    } finally {
      credential.stop();
    }
  });

  it('refuses to start with a token OpenBao rejects, without echoing it', async () => {
    const jwtFile = path.join(dir, 'wrong');
    const jwt = await serviceAccountToken('openbao', 'system:serviceaccount:other:thief');
    await writeFile(jwtFile, jwt);
    const error = await start(jwtFile).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    // Our own words only: the operation and OpenBao's status, never the token.
    expect((error as Error).message).toMatch(/^OpenBao kubernetes login failed: \w+ \(HTTP \d+\)$/);
    expect(String((error as Error).message)).not.toContain(jwt.split('.')[1]);
  });
});
