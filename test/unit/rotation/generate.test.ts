import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ALPHABET, generateValue } from '../../../src/rotation/generate.js';

describe('generated values', () => {
  it('passwords: the length asked for, only alphabet characters, every character reachable', () => {
    const values = Array.from(
      { length: 200 },
      () => generateValue({ key: 'password', kind: 'password', length: 40 }).password ?? '',
    );
    for (const v of values) {
      expect(v).toHaveLength(40);
      expect([...v].every((c) => DEFAULT_ALPHABET.includes(c))).toBe(true);
    }
    expect(new Set(values).size).toBe(200);
    // 8,000 draws over 62 characters: each appears (p of a miss ~ 62 * e^-129).
    expect(new Set(values.join('')).size).toBe(DEFAULT_ALPHABET.length);
    const custom = generateValue({
      key: 'pin',
      kind: 'password',
      length: 12,
      alphabet: '0123456789',
    });
    expect(custom.pin).toMatch(/^[0-9]{12}$/);
  });

  it('tokens: bytes of randomness in the format asked for', () => {
    expect(generateValue({ key: 't', kind: 'token', length: 32, format: 'hex' }).t).toMatch(
      /^[0-9a-f]{64}$/,
    );
    expect(generateValue({ key: 't', kind: 'token', length: 32 }).t).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(generateValue({ key: 't', kind: 'token', length: 30, format: 'base64' }).t).toMatch(
      /^[A-Za-z0-9+/]{40}$/,
    );
  });

  it('key pairs: a private key and its public key that verifies its signatures', () => {
    for (const spec of [
      { key: 'ssh', kind: 'keypair' as const, length: 2048, format: 'rsa' },
      { key: 'ssh', kind: 'keypair' as const, length: 2048, format: 'ed25519' },
    ]) {
      const pair = generateValue(spec);
      expect(Object.keys(pair).sort()).toEqual(['ssh', 'ssh_public']);
      const priv = createPrivateKey(pair.ssh ?? '');
      const pub = createPublicKey(pair.ssh_public ?? '');
      const algorithm = spec.format === 'rsa' ? 'sha256' : null;
      const signature = sign(algorithm, Buffer.from('x'), priv);
      expect(verify(algorithm, Buffer.from('x'), pub, signature)).toBe(true);
      expect(priv.asymmetricKeyType).toBe(spec.format);
    }
  });
});
