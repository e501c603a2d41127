/**
 * Reading Zuul's own encrypted secrets, for `zsb import-zuul-secrets`: the `secret`
 * items of a project's Zuul configuration, whose values may be tagged
 * `!encrypted/pkcs1-oaep` (one base64 block, or a list of blocks when the plaintext was
 * longer than one RSA block), encrypted with the project's public key using RSA-OAEP with
 * SHA-1, as Zuul's `encrypt_secret` tool and `openssl pkeyutl -pkeyopt
 * rsa_padding_mode:oaep` do. Nothing here ever puts a plaintext into an error.
 */
import { constants, createPrivateKey, type KeyObject, privateDecrypt } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';

const TAG = '!encrypted/pkcs1-oaep';
const MAX_FILE_BYTES = 1024 * 1024;

/** A value still encrypted: the base64 blocks as written in the file. */
export class EncryptedValue {
  constructor(readonly blocks: readonly string[]) {}
}

export interface ZuulSecret {
  readonly name: string;
  readonly file: string;
  readonly line: number;
  /** The secret's `data`, with EncryptedValue leaves. */
  readonly data: Readonly<Record<string, unknown>>;
}

export class ImportError extends Error {
  override readonly name = 'ImportError';
}

/**
 * Converts a parsed node to data, turning nodes tagged `!encrypted/pkcs1-oaep` (a scalar
 * or a sequence of scalars) into EncryptedValue and refusing any other tag.
 */
function toData(node: unknown, file: string): unknown {
  if (isScalar(node)) {
    if (node.tag === TAG) return new EncryptedValue([String(node.source ?? node.value)]);
    return node.value;
  }
  if (isSeq(node)) {
    if (node.tag === TAG)
      return new EncryptedValue(
        node.items.map((i) => String(isScalar(i) ? (i.source ?? i.value) : '')),
      );
    return node.items.map((i) => toData(i, file));
  }
  if (isMap(node)) {
    return Object.fromEntries(
      node.items.map((pair) => [
        String(isScalar(pair.key) ? pair.key.value : pair.key),
        toData(pair.value, file),
      ]),
    );
  }
  if (isAlias(node)) throw new ImportError(`${file}: YAML aliases are not supported here`);
  return null;
}

/** The config files of a project as Zuul reads it: the first of these that exists. */
export function zuulConfigFiles(target: string): string[] {
  if (statSync(target).isFile()) return [target];
  for (const candidate of ['zuul.yaml', 'zuul.d', '.zuul.yaml', '.zuul.d']) {
    const full = path.join(target, candidate);
    if (!existsSync(full)) continue;
    if (statSync(full).isFile()) return [full];
    return readdirSync(full)
      .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
      .sort()
      .map((f) => path.join(full, f));
  }
  throw new ImportError(`${target}: no zuul.yaml, zuul.d/, .zuul.yaml or .zuul.d/ found`);
}

/** The `secret` items of one Zuul configuration file. */
export function readZuulSecrets(file: string): ZuulSecret[] {
  const bytes = readFileSync(file);
  if (bytes.length > MAX_FILE_BYTES)
    throw new ImportError(`${file}: larger than ${MAX_FILE_BYTES} bytes`);
  const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    throw new ImportError(
      `${file}:${first?.linePos?.[0]?.line ?? 1}: YAML error (${first?.code ?? 'unknown'})`,
    );
  }
  const contents = doc.contents;
  if (!isSeq(contents)) return [];
  const secrets: ZuulSecret[] = [];
  for (const item of contents.items) {
    const js = toData(item, file);
    if (typeof js !== 'object' || js === null || !('secret' in js)) continue;
    const secret = (js as { secret: unknown }).secret;
    if (typeof secret !== 'object' || secret === null) continue;
    const { name, data } = secret as { name?: unknown; data?: unknown };
    if (
      typeof name !== 'string' ||
      typeof data !== 'object' ||
      data === null ||
      Array.isArray(data)
    ) {
      throw new ImportError(`${file}: a secret without a name or a data mapping`);
    }
    const range = (item as { range?: [number, number, number] }).range;
    const line = range ? text.slice(0, range[0]).split('\n').length : 1;
    secrets.push({ name, file, line, data: data as Record<string, unknown> });
  }
  return secrets;
}

/**
 * The project's private key: a PEM (passphrase optional), or the JSON of
 * `zuul-admin export-keys` with the keystore password, in which the project's secrets
 * key sits at `/keystorage/<connection>/<org>/<quote_plus(project name)>/secrets`.
 */
export function loadProjectKey(
  file: string,
  passphrase: string | undefined,
  project: string,
): KeyObject {
  const text = readFileSync(file, 'utf8');
  let pem = text;
  if (text.trimStart().startsWith('{')) {
    pem = pemFromExport(text, project);
  }
  try {
    return createPrivateKey(passphrase === undefined ? { key: pem } : { key: pem, passphrase });
  } catch {
    throw new ImportError(
      `${file}: cannot read the private key (wrong passphrase, or not an RSA private key)`,
    );
  }
}

/** Python's quote_plus, which Zuul uses for key storage paths. */
function quotePlus(value: string): string {
  return encodeURIComponent(value)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

function pemFromExport(text: string, project: string): string {
  let exported: unknown;
  try {
    exported = JSON.parse(text);
  } catch {
    throw new ImportError('the key file is neither a PEM key nor zuul-admin export-keys JSON');
  }
  const keys = (exported as { keys?: unknown }).keys;
  if (typeof keys !== 'object' || keys === null)
    throw new ImportError('export-keys JSON without "keys"');
  // Zuul keys its storage by project *name* (org/repo), the canonical name adds the host.
  const names = [project, project.split('/').slice(1).join('/')].filter((n) => n.includes('/'));
  const wanted = names.map((n) => `/${n.split('/')[0]}/${quotePlus(n)}/secrets`);
  const matches = Object.entries(keys).filter(([p]) => wanted.some((w) => p.endsWith(w)));
  if (matches.length !== 1) {
    throw new ImportError(
      `export-keys JSON: ${matches.length === 0 ? 'no' : 'more than one'} secrets key for project ${project}`,
    );
  }
  const entry = matches[0]?.[1] as { keys?: { private_key?: unknown }[] } | undefined;
  const pem = entry?.keys?.[0]?.private_key;
  if (typeof pem !== 'string')
    throw new ImportError(`export-keys JSON: no private_key for project ${project}`);
  return pem;
}

function decryptValue(key: KeyObject, value: EncryptedValue): string {
  const parts = value.blocks.map((block) =>
    privateDecrypt(
      { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
      Buffer.from(block.replace(/\s+/g, ''), 'base64'),
    ),
  );
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(parts));
}

/** The secret's data with every encrypted leaf decrypted; errors name the field only. */
export function decryptSecret(key: KeyObject, secret: ZuulSecret): Record<string, unknown> {
  const walk = (value: unknown, field: string): unknown => {
    if (value instanceof EncryptedValue) {
      try {
        return decryptValue(key, value);
      } catch {
        throw new ImportError(
          `secret '${secret.name}' (${secret.file}:${secret.line}), field '${field}': cannot decrypt (wrong key or corrupt block)`,
        );
      }
    }
    if (Array.isArray(value)) return value.map((v, i) => walk(v, `${field}[${i}]`));
    if (typeof value === 'object' && value !== null) {
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, walk(v, field ? `${field}.${k}` : k)]),
      );
    }
    return value;
  };
  return walk(secret.data, '') as Record<string, unknown>;
}
