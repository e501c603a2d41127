/**
 * Test certificates made with the openssl CLI: a CA and leaves it signs (P-256, one day).
 * Files are `<dir>/<name>.crt` and `<dir>/<name>.key`; openssl's output never reaches the
 * test log (it could echo key material).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export interface CertPair {
  readonly cert: string;
  readonly key: string;
}

async function openssl(dir: string, ...args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

export async function makeCa(dir: string, name: string): Promise<CertPair> {
  const pair = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  await openssl(
    dir,
    'req',
    '-x509',
    ...P256,
    '-keyout',
    pair.key,
    '-out',
    pair.cert,
    '-days',
    '1',
    '-subj',
    `/CN=zsb test ${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  return pair;
}

/** A leaf for `subject` signed by `ca`, with `extensions` (openssl extfile lines). */
export async function issueCertificate(
  dir: string,
  ca: CertPair,
  name: string,
  subject: string,
  extensions: string,
): Promise<CertPair> {
  const pair = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  await writeFile(ext, extensions);
  await openssl(
    dir,
    'req',
    '-new',
    ...P256,
    '-keyout',
    pair.key,
    '-out',
    csr,
    '-subj',
    `/CN=${subject}`,
  );
  await openssl(
    dir,
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '1',
    '-out',
    pair.cert,
    '-extfile',
    ext,
  );
  return pair;
}
