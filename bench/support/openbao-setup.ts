/**
 * Prepares a fresh `bao server -dev` for the broker benchmark: the KV entries, one ACL
 * policy that reads them (held by the static token, by the broker's token and by tokens
 * from OpenBao's own JWT login), and OpenBao's JWT auth method trusting the same Zuul
 * issuer key as the broker.
 */
import { randomBytes } from 'node:crypto';
import { createOpenBaoClient } from '../../src/openbao/client.js';

/** Logical name in the broker's policies → KV v2 path under `secret/`. */
export const BENCH_SECRETS = {
  'bench-clouds': 'zuul/bench/clouds',
  'bench-deploy-key': 'zuul/bench/deploy',
  'bench-registry': 'zuul/bench/registry',
} as const;
export type BenchSecretName = keyof typeof BENCH_SECRETS;
export const BENCH_SECRET_NAMES = Object.keys(BENCH_SECRETS) as BenchSecretName[];

export const READ_POLICY = 'zsb-bench-read';
export const BROKER_SELF_POLICY = 'zsb-bench-broker-self';
export const JWT_ROLE = 'zuul-bench';

const READ_ACL = `
path "secret/data/zuul/bench/*" {
  capabilities = ["read"]
}
`;

/** What `zsb policy compile` grants the broker besides the secrets: its own token's upkeep. */
const BROKER_SELF_ACL = `
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}
`;

export interface PreparedOpenBao {
  /** A token with READ_POLICY only (not root: root skips ACL checks). */
  readonly readToken: string;
  /** The broker's own token: READ_POLICY and BROKER_SELF_POLICY. */
  readonly brokerToken: string;
}

function secretValue(name: string): Record<string, string> {
  const word = () => randomBytes(18).toString('base64url');
  return {
    username: `ci-${name}`,
    password: word(),
    url: `https://${name}.example.org/v3`,
  };
}

/** A raw OpenBao API call for what the project's client does not offer (auth methods). */
async function baoApi(
  address: string,
  rootToken: string,
  method: 'POST' | 'PUT',
  path: string,
  body: unknown,
): Promise<void> {
  const response = await fetch(`${address}/v1/${path}`, {
    method,
    headers: { 'X-Vault-Token': rootToken, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  if (!response.ok) {
    throw new Error(`OpenBao ${method} ${path}: HTTP ${response.status}: ${await response.text()}`);
  }
}

export async function prepareOpenBao(opts: {
  readonly address: string;
  readonly rootToken: string;
  readonly issuer: string;
  readonly issuerPublicKeyPem: string;
  readonly audience: string;
}): Promise<PreparedOpenBao> {
  const admin = createOpenBaoClient({
    addresses: [opts.address],
    timeoutMs: 10000,
    maxConnections: 4,
    token: () => opts.rootToken,
  });
  for (const [name, path] of Object.entries(BENCH_SECRETS)) {
    await admin.kvWrite('secret', path, secretValue(name));
  }
  await admin.putAclPolicy(READ_POLICY, READ_ACL);
  await admin.putAclPolicy(BROKER_SELF_POLICY, BROKER_SELF_ACL);
  const tokenFor = async (displayName: string, policies: string[]) =>
    (
      await admin.createToken({
        policies,
        ttlSeconds: 3600,
        orphan: true,
        // Not OpenBao's `default` policy: its templated paths make OpenBao resolve the
        // token's identity on every request, which doubles the cost of a KV read.
        noDefaultPolicy: true,
        displayName,
      })
    ).token;

  // OpenBao's JWT auth, configured as one would to let Zuul jobs log in directly.
  await baoApi(opts.address, opts.rootToken, 'POST', 'sys/auth/jwt', { type: 'jwt' });
  await baoApi(opts.address, opts.rootToken, 'POST', 'auth/jwt/config', {
    jwt_validation_pubkeys: [opts.issuerPublicKeyPem],
    bound_issuer: opts.issuer,
    jwt_supported_algs: ['RS256'],
  });
  await baoApi(opts.address, opts.rootToken, 'POST', `auth/jwt/role/${JWT_ROLE}`, {
    role_type: 'jwt',
    user_claim: 'sub',
    bound_audiences: [opts.audience],
    bound_claims: { tenant: 'scs' },
    token_policies: [READ_POLICY],
    token_no_default_policy: true,
    token_ttl: '60s',
    token_max_ttl: '60s',
  });

  return {
    readToken: await tokenFor('zsb-bench-direct', [READ_POLICY]),
    brokerToken: await tokenFor('zsb-bench', [READ_POLICY, BROKER_SELF_POLICY]),
  };
}
