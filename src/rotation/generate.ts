/**
 * New values for rotated KV fields (policy.md `generate`). Every character or byte comes
 * from node:crypto; passwords draw each character uniformly from the alphabet
 * (`randomInt` rejects the biased tail).
 */
import { generateKeyPairSync, randomBytes, randomInt } from 'node:crypto';
import type { GenerateSpec } from '../policy/types.js';

/** Letters and digits: safe in URLs, connection strings and shell words. */
export const DEFAULT_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** The fields a generated value writes: `key`, and `<key>_public` for a key pair. */
export function generateValue(spec: GenerateSpec): Record<string, string> {
  switch (spec.kind) {
    case 'password': {
      const alphabet = [...(spec.alphabet ?? DEFAULT_ALPHABET)];
      let value = '';
      for (let i = 0; i < spec.length; i++) value += alphabet[randomInt(alphabet.length)];
      return { [spec.key]: value };
    }
    case 'token': {
      const format = (spec.format ?? 'base64url') as BufferEncoding;
      return { [spec.key]: randomBytes(spec.length).toString(format) };
    }
    case 'keypair': {
      const pair =
        spec.format === 'ed25519'
          ? generateKeyPairSync('ed25519')
          : generateKeyPairSync('rsa', { modulusLength: spec.length });
      return {
        [spec.key]: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        [`${spec.key}_public`]: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      };
    }
  }
}
