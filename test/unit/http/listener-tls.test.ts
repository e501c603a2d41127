import { chmod, copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrivateFileError } from '../../../src/config/private-file.js';
import { readTlsPairSync, startListenerTls } from '../../../src/http/listener-tls.js';
import { type CertPair, issueCertificate, makeCa } from '../../support/certs.js';

let dir: string;
let first: CertPair;
let second: CertPair;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-listener-tls-'));
  const ca = await makeCa(dir, 'ca');
  const ext = 'subjectAltName=IP:127.0.0.1\n';
  first = await issueCertificate(dir, ca, 'first', '127.0.0.1', ext);
  second = await issueCertificate(dir, ca, 'second', '127.0.0.1', ext);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('listener private key mode', () => {
  it('refuses a key file readable by group or others at start, naming key, file, mode and fix', async () => {
    const live = { certFile: path.join(dir, 'live.crt'), keyFile: path.join(dir, 'live.key') };
    await copyFile(first.cert, live.certFile);
    await copyFile(first.key, live.keyFile);
    await chmod(live.keyFile, 0o660);
    let error: unknown;
    try {
      readTlsPairSync(live);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PrivateFileError);
    expect((error as Error).message).toBe(
      `listen.tls.keyFile: ${live.keyFile} is accessible to group or others (mode 0660) but ` +
        `holds a secret; make it private to the broker's user: chmod 600 ${live.keyFile} ` +
        '(or, owned by root, readable by a group at most: chmod 440)',
    );
    await chmod(live.keyFile, 0o600);
    expect(readTlsPairSync(live).summary.fingerprint256).toMatch(/^[0-9A-F:]+$/);
  });

  it('keeps the old pair on reload when the new key is readable by others, and logs why', async () => {
    const live = { certFile: path.join(dir, 'r.crt'), keyFile: path.join(dir, 'r.key') };
    await copyFile(first.cert, live.certFile);
    await copyFile(first.key, live.keyFile);
    const applied: unknown[] = [];
    const errors: Array<Record<string, unknown>> = [];
    const tls = startListenerTls(
      { setSecureContext: (options) => applied.push(options) },
      live,
      readTlsPairSync(live),
      {
        watch: false,
        logger: { info: () => undefined, error: (o) => errors.push(o as Record<string, unknown>) },
      },
    );
    await copyFile(second.cert, live.certFile);
    await copyFile(second.key, live.keyFile);
    await chmod(live.keyFile, 0o644);
    const rejected = await tls.reload();
    expect(rejected).toMatchObject({ outcome: 'rejected' });
    expect(rejected.outcome === 'rejected' && rejected.reason).toContain('mode 0644');
    expect(applied).toEqual([]);
    expect(errors[0]?.reason).toContain('listen.tls.keyFile');
    await chmod(live.keyFile, 0o600);
    expect((await tls.reload()).outcome).toBe('applied');
    expect(applied).toHaveLength(1);
    tls.close();
  });
});
