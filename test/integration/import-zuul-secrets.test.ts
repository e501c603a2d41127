/**
 * `zsb import-zuul-secrets` with ciphertext made by a real outside tool: OpenSSL's
 * RSA-OAEP (SHA-1) encryption, chunked the way Zuul's encrypt_secret tool chunks, in 1
 * and 3 blocks; round-trips byte for byte into a real OpenBao.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runZsb } from '../support/process.js';
import { realOpenBao, uniquePrefix } from '../support/real-openbao.js';

const bao = realOpenBao();
const prefix = uniquePrefix('import');
let dir = '';
const env = () => ({ BAO_ADDR: bao.address, BAO_TOKEN: bao.rootToken });

const SHORT = 'pässwörd ✓ 🚀';
const LONG = `-----BEGIN FAKE KEY-----\n${'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkw\n'.repeat(22)}-----END FAKE KEY-----\n`;

function openssl(args: string[], input?: Buffer): Buffer {
  return execFileSync('openssl', args, { input: input ?? Buffer.alloc(0), cwd: dir });
}

/** Encrypts like Zuul's tools/encrypt_secret.py: OAEP (SHA-1) blocks of (key bytes − 42). */
function encrypt(plaintext: string, publicKey = 'pub.pem', keyBytes = 512): string[] {
  const bytes = Buffer.from(plaintext, 'utf8');
  const size = keyBytes - 42;
  const blocks: string[] = [];
  for (let i = 0; i < bytes.length; i += size) {
    const chunk = bytes.subarray(i, i + size);
    blocks.push(
      openssl(
        ['pkeyutl', '-encrypt', '-pubin', '-inkey', publicKey, '-pkeyopt', 'rsa_padding_mode:oaep'],
        chunk,
      ).toString('base64'),
    );
  }
  return blocks;
}

/** A block as Zuul writes it: a plain scalar folded over several indented lines. */
function folded(block: string, indent: string): string {
  return (block.match(/.{1,70}/g) ?? []).join(`\n${indent}`);
}

function zuulYaml(secrets: Record<string, Record<string, string[] | string>>): string {
  const out: string[] = [];
  for (const [name, data] of Object.entries(secrets)) {
    out.push('- secret:', `    name: ${name}`, '    data:');
    for (const [field, value] of Object.entries(data)) {
      if (typeof value === 'string') out.push(`      ${field}: ${JSON.stringify(value)}`);
      else if (value.length === 1) out.push(`      ${field}: !encrypted/pkcs1-oaep ${value[0]}`);
      else {
        out.push(`      ${field}: !encrypted/pkcs1-oaep`);
        for (const block of value) out.push(`        - ${folded(block, '          ')}`);
      }
    }
  }
  out.push('- job:', '    name: uses-secrets', '');
  return out.join('\n');
}

async function readKv(p: string) {
  return bao.admin.kvRead('secret', p);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-import-'));
  openssl(['genrsa', '-out', 'key.pem', '4096']);
  openssl(['rsa', '-in', 'key.pem', '-pubout', '-out', 'pub.pem']);
  openssl(['genrsa', '-out', 'other.pem', '4096']);
  const longBlocks = encrypt(LONG);
  expect(longBlocks).toHaveLength(3);
  await mkdir(path.join(dir, 'project', 'zuul.d'), { recursive: true });
  await writeFile(
    path.join(dir, 'project', 'zuul.d', 'secrets.yaml'),
    zuulYaml({
      cloud_creds: { username: 'ci', password: encrypt(SHORT) },
      deploy_key: { private_key: longBlocks },
    }),
  );
}, 60000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const base = (extra: string[]) => [
  'import-zuul-secrets',
  '--tenant',
  'scs',
  '--project',
  'github.com/org/repo',
  '--path',
  `${prefix}/{tenant}/{project}/{name}`,
  ...extra,
];

describe('import-zuul-secrets', () => {
  it('dry run lists names and target paths, never values, and writes nothing', async () => {
    const result = await runZsb([...base(['--key', 'key.pem', '--dry-run']), 'project'], {
      cwd: dir,
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      `would write secret 'cloud_creds' (2 fields) to secret/${prefix}/scs/github.com/org/repo/cloud_creds`,
    );
    expect(result.stdout + result.stderr).not.toContain('pässwörd');
    expect(result.stdout + result.stderr).not.toContain('FAKE KEY');
    expect(await readKv(`${prefix}/scs/github.com/org/repo/cloud_creds`)).toBeNull();
  });

  it('round-trips 1- and 3-block values byte for byte, with a policy stub', async () => {
    const result = await runZsb([...base(['--key', 'key.pem']), 'project'], {
      cwd: dir,
      env: env(),
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect((await readKv(`${prefix}/scs/github.com/org/repo/cloud_creds`))?.data).toEqual({
      username: 'ci',
      password: SHORT,
    });
    expect((await readKv(`${prefix}/scs/github.com/org/repo/deploy_key`))?.data).toEqual({
      private_key: LONG,
    });
    expect(result.stdout).toContain('cloud_creds:');
    expect(result.stdout).toContain('allow: [cloud_creds, deploy_key]');
    expect(result.stdout).not.toContain('pässwörd');
  });

  it('never overwrites unless asked', async () => {
    await bao.admin.kvWrite('secret', `${prefix}/scs/github.com/org/repo/cloud_creds`, {
      username: 'changed',
    });
    const refused = await runZsb([...base(['--key', 'key.pem']), 'project'], {
      cwd: dir,
      env: env(),
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('exists (use --overwrite)');
    expect((await readKv(`${prefix}/scs/github.com/org/repo/cloud_creds`))?.data).toEqual({
      username: 'changed',
    });
    const forced = await runZsb([...base(['--key', 'key.pem', '--overwrite']), 'project'], {
      cwd: dir,
      env: env(),
    });
    expect(forced.code).toBe(0);
    expect((await readKv(`${prefix}/scs/github.com/org/repo/cloud_creds`))?.data).toEqual({
      username: 'ci',
      password: SHORT,
    });
  });

  it('a wrong key names the secret and field and writes nothing for it', async () => {
    const result = await runZsb(
      [...base(['--key', 'other.pem', '--path', `${prefix}/wrong/{name}`]), 'project'],
      { cwd: dir, env: env() },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("secret 'cloud_creds'");
    expect(result.stderr).toContain("field 'password'");
    expect(result.stderr).toContain("secret 'deploy_key'");
    expect(await readKv(`${prefix}/wrong/cloud_creds`)).toBeNull();
  });

  it('a corrupt block fails only its secret', async () => {
    const good = encrypt('fine');
    const bad = encrypt(LONG);
    bad[1] = `${(bad[1] ?? '').slice(0, 40)}AAAA${(bad[1] ?? '').slice(44)}`;
    await writeFile(
      path.join(dir, 'corrupt.yaml'),
      zuulYaml({ ok_secret: { v: good }, broken: { v: bad } }),
    );
    const result = await runZsb(
      [...base(['--key', 'key.pem', '--path', `${prefix}/corrupt/{name}`]), 'corrupt.yaml'],
      {
        cwd: dir,
        env: env(),
      },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("secret 'broken'");
    expect(result.stderr).toContain("field 'v'");
    expect((await readKv(`${prefix}/corrupt/ok_secret`))?.data).toEqual({ v: 'fine' });
    expect(await readKv(`${prefix}/corrupt/broken`)).toBeNull();
  });

  it('reads a passphrase-protected PEM and the JSON of zuul-admin export-keys', async () => {
    await writeFile(path.join(dir, 'pass.txt'), 'keystore-pw\n');
    openssl([
      'pkcs8',
      '-topk8',
      '-v2',
      'aes-256-cbc',
      '-in',
      'key.pem',
      '-passout',
      'pass:keystore-pw',
      '-out',
      'enc.pem',
    ]);
    const pem = await readFile(path.join(dir, 'enc.pem'), 'utf8');
    const withPass = await runZsb(
      [...base(['--key', 'enc.pem', '--passphrase-file', 'pass.txt', '--dry-run']), 'project'],
      { cwd: dir },
    );
    expect(withPass.code).toBe(0);
    await writeFile(
      path.join(dir, 'export.json'),
      JSON.stringify({
        keys: {
          '/keystorage/github/org/org%2Frepo/secrets': {
            schema: 1,
            keys: [{ version: 0, created: 1, private_key: pem }],
          },
          '/keystorage/github/org/org%2Fother/secrets': {
            schema: 1,
            keys: [{ version: 0, created: 1, private_key: 'x' }],
          },
        },
      }),
    );
    const fromExport = await runZsb(
      [
        ...base([
          '--key',
          'export.json',
          '--passphrase-file',
          'pass.txt',
          '--path',
          `${prefix}/export/{name}`,
        ]),
        'project',
      ],
      { cwd: dir, env: env() },
    );
    expect(fromExport.stderr).toBe('');
    expect((await readKv(`${prefix}/export/deploy_key`))?.data).toEqual({ private_key: LONG });
  });
});
