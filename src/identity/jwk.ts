/**
 * What a key set document may contribute to the cache: public signature keys for the
 * issuer's allowed algorithms, nothing else. A document without one usable key is refused,
 * so a wrong URL that happens to answer JSON never empties the cache.
 */
import type { JWK } from 'jose';
import { importJWK } from 'jose';
import { z } from 'zod';
import { IssuerDocumentError } from './issuer-document.js';

/** Zuul publishes a handful of keys; a set far larger than this is not a Zuul key set. */
const MAX_KEYS = 64;

const JwksDocumentSchema = z.object({ keys: z.array(z.unknown()).max(MAX_KEYS) });

/**
 * Only public members are kept: zod drops everything else, so a private member published by
 * mistake (`d`, `p`, …) never enters the cache.
 */
const PublicJwkSchema = z.object({
  kty: z.enum(['RSA', 'EC', 'OKP']),
  kid: z.string().min(1).max(256),
  use: z.string().optional(),
  key_ops: z.array(z.string()).optional(),
  alg: z.string().optional(),
  n: z.string().optional(),
  e: z.string().optional(),
  crv: z.string().optional(),
  x: z.string().optional(),
  y: z.string().optional(),
});
type PublicJwk = z.infer<typeof PublicJwkSchema>;

const ALGORITHMS_BY_KEY: Record<PublicJwk['kty'], readonly string[]> = {
  RSA: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  EC: ['ES256', 'ES384', 'ES512'],
  OKP: ['EdDSA', 'Ed25519'],
};

const CURVE_BY_ALGORITHM: Record<string, string> = {
  ES256: 'P-256',
  ES384: 'P-384',
  ES512: 'P-521',
};

/** The algorithm this key would be used with, or undefined when the issuer may not use it. */
function signingAlgorithm(jwk: PublicJwk, allowed: readonly string[]): string | undefined {
  const candidates = ALGORITHMS_BY_KEY[jwk.kty].filter((alg) => allowed.includes(alg));
  const fitting = candidates.filter((alg) => {
    const curve = CURVE_BY_ALGORITHM[alg];
    return curve === undefined || curve === jwk.crv;
  });
  if (jwk.alg !== undefined) return fitting.includes(jwk.alg) ? jwk.alg : undefined;
  return fitting[0];
}

/** RSA keys under 2048 bits are refused by jose at verification; drop them at load instead. */
const MIN_RSA_MODULUS_BITS = 2048;

function modulusBits(n: string): number {
  const bytes = Buffer.from(n, 'base64url');
  const first = bytes.findIndex((byte) => byte !== 0);
  if (first === -1) return 0;
  return (bytes.length - first) * 8 - Math.clz32(bytes[first] ?? 0) + 24;
}

function isUsableSignatureKey(jwk: PublicJwk): boolean {
  if (jwk.kty === 'RSA' && (jwk.n === undefined || modulusBits(jwk.n) < MIN_RSA_MODULUS_BITS)) {
    return false;
  }
  if (jwk.use !== undefined && jwk.use !== 'sig') return false;
  return jwk.key_ops === undefined || jwk.key_ops.includes('verify');
}

/** A clean JWK object; optional members are omitted rather than set to undefined. */
function toJwk(jwk: PublicJwk): JWK {
  const out: JWK = { kty: jwk.kty, kid: jwk.kid };
  for (const member of ['use', 'alg', 'n', 'e', 'crv', 'x', 'y'] as const) {
    const value = jwk[member];
    if (value !== undefined) out[member] = value;
  }
  if (jwk.key_ops !== undefined) out.key_ops = [...jwk.key_ops];
  return out;
}

export async function usableKeys(document: unknown, allowed: readonly string[]): Promise<JWK[]> {
  const parsed = JwksDocumentSchema.safeParse(document);
  if (!parsed.success) throw new IssuerDocumentError('invalid key set', 'invalid');
  const keys: JWK[] = [];
  for (const candidate of parsed.data.keys) {
    const jwk = PublicJwkSchema.safeParse(candidate);
    if (!jwk.success || !isUsableSignatureKey(jwk.data)) continue;
    const alg = signingAlgorithm(jwk.data, allowed);
    if (alg === undefined) continue;
    const clean = toJwk(jwk.data);
    try {
      // Importing now drops keys that would only fail later, at verification time.
      await importJWK(clean, alg);
    } catch {
      continue;
    }
    keys.push(clean);
  }
  if (keys.length === 0) throw new IssuerDocumentError('no usable keys', 'invalid');
  return keys;
}
