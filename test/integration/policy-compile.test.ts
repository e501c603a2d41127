/**
 * `zsb policy compile --apply` against a real OpenBao: the broker, holding only the
 * compiled policy, can read what the policies reference and nothing else.
 */

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createOpenBaoClient } from '../../src/openbao/client.js';
import { ROOT } from '../support/process.js';
import { baoRequest, realOpenBao, uniquePrefix } from '../support/real-openbao.js';

const bao = realOpenBao();
const prefix = uniquePrefix('compile');
let dir = '';

const POLICY = `
secrets:
  fixed:
    kv: { mount: secret, path: ${prefix}/fixed }
  per-project:
    kv: { mount: secret, path: "${prefix}/{tenant}/{project}/deploy" }
grants:
  - name: g
    match: { tenant: scs, pipeline: post }
    allow: [fixed, per-project]
`;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-compile-'));
  await writeFile(path.join(dir, 'p.yaml'), POLICY);
  for (const p of [
    'fixed',
    'unreferenced',
    'scs/github.com/org/repo/deploy',
    'scs/github.com/org/repo/other',
  ]) {
    await bao.admin.kvWrite('secret', `${prefix}/${p}`, { v: p });
  }
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('applies a policy under which only referenced paths are readable', async () => {
  const name = `zsb-${prefix}`;
  const tsx = pathToFileURL(path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '--import',
      tsx,
      path.join(ROOT, 'src/cli/index.ts'),
      'policy',
      'compile',
      '--policies',
      dir,
      '--apply',
      '--name',
      name,
    ],
    { env: { ...process.env, BAO_ADDR: bao.address, BAO_TOKEN: bao.rootToken } },
  );
  expect(stdout).toContain(`wrote ACL policy ${name}`);

  const token = await bao.admin.createToken({
    policies: [name],
    ttlSeconds: 600,
    noDefaultPolicy: true,
  });
  const broker = createOpenBaoClient({
    addresses: [bao.address],
    timeoutMs: 5000,
    maxConnections: 2,
    token: () => token.token,
  });
  expect(await broker.kvRead('secret', `${prefix}/fixed`)).toMatchObject({ data: { v: 'fixed' } });
  expect(await broker.kvRead('secret', `${prefix}/scs/github.com/org/repo/deploy`)).toMatchObject({
    data: { v: 'scs/github.com/org/repo/deploy' },
  });
  for (const p of ['unreferenced', 'scs/github.com/org/repo/other']) {
    await expect(broker.kvRead('secret', `${prefix}/${p}`)).rejects.toMatchObject({
      kind: 'permission_denied',
    });
  }
  const metadata = await baoRequest(bao.address, 'GET', `secret/metadata/${prefix}/fixed`, {
    token: token.token,
  });
  expect(metadata.status).toBe(403);
  const policies = await baoRequest(bao.address, 'GET', 'sys/policies/acl?list=true', {
    token: token.token,
  });
  expect(policies.status).toBe(403);
}, 60000);
