/**
 * /readyz `dynamic` against a real OpenBao: dynamic secrets in the policies but no build
 * token role. With an older broker ACL that lacks `read` on the role, the broker cannot
 * tell (degraded, saying why); with the ACL that `zsb policy compile` makes, it says the
 * role is missing and how to create it; once the role exists, the check is ok and the
 * fetch that answered 502 is served.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger, type RunningBroker, startBroker } from '../../src/main.js';
import { compileOpenBaoSetup } from '../../src/policy/compile.js';
import { formatProblem, parsePolicyFiles } from '../../src/policy/load.js';
import { LogCapture } from '../support/app.js';
import { until } from '../support/http.js';
import { realOpenBao, uniquePrefix } from '../support/real-openbao.js';
import { startZuulIssuer, type ZuulIssuer } from '../support/zuul.js';

const bao = realOpenBao();
const prefix = uniquePrefix('ready-dyn');
/** The broker's openbao.* names, and the same for `zsb policy compile`. */
const openbaoNames = {
  stateMount: 'secret',
  statePrefix: `zsb-${prefix}`,
  buildTokenRole: `build-${prefix}`,
  buildPolicy: `build-${prefix}`,
};
const names = { ...openbaoNames, maxTtlSeconds: 3600 };
const brokerPolicy = `broker-${prefix}`;
const policyYaml = `secrets:
  bao-token:
    token: { policies: [e2e-${prefix}] }
grants:
  - name: dynamic
    match: { tenant: scs }
    allow: [bao-token]
`;

let dir = '';
let issuer: ZuulIssuer;
let broker: RunningBroker;
let compiledPolicy = '';
const logs = new LogCapture();

beforeAll(async () => {
  const loaded = parsePolicyFiles([{ name: 'dynamic.yaml', text: policyYaml }], {
    maxTtlSeconds: 3600,
  });
  if (!loaded.ok) throw new Error(loaded.problems.map(formatProblem).join('\n'));
  const setup = compileOpenBaoSetup(loaded.set, names);
  compiledPolicy = setup.brokerPolicy;
  const roleRule = `path "auth/token/roles/${names.buildTokenRole}" {\n  capabilities = ["read"]\n}\n`;
  expect(compiledPolicy).toContain(roleRule);
  // An ACL compiled before the rule existed: the broker cannot read the role.
  await bao.admin.putAclPolicy(brokerPolicy, compiledPolicy.replace(roleRule, ''));
  await bao.admin.putAclPolicy(names.buildPolicy, setup.buildPolicy);
  await bao.admin.putAclPolicy(
    `e2e-${prefix}`,
    `path "secret/data/${prefix}/*" { capabilities = ["read"] }\n`,
  );
  // No token role: that is the operator's mistake under test.
  const token = await bao.admin.createToken({
    policies: [brokerPolicy],
    ttlSeconds: 600,
    orphan: true,
  });
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-ready-dyn-'));
  await writeFile(path.join(dir, 'token'), token.token, { mode: 0o600 });
  await mkdir(path.join(dir, 'policies'));
  await writeFile(path.join(dir, 'policies', 'dynamic.yaml'), policyYaml);
  issuer = await startZuulIssuer();
  broker = await startBroker(
    parseConfig({
      listen: { host: '127.0.0.1', port: 0 },
      issuers: [{ issuer: issuer.issuer, audience: 'https://secrets.example.org' }],
      openbao: {
        address: bao.address,
        auth: { method: 'token', tokenFile: path.join(dir, 'token') },
        ...openbaoNames,
      },
      policies: path.join(dir, 'policies'),
      watchPolicies: false,
      rotation: { enabled: false },
      audit: { file: path.join(dir, 'audit.jsonl') },
    }),
    { logger: createLogger('info', logs) },
  );
}, 60000);

afterAll(async () => {
  await broker?.close();
  await issuer?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function dynamicCheck() {
  const res = await fetch(`${broker.url}/readyz`);
  const body = (await res.json()) as { checks: Record<string, { status: string; detail: string }> };
  return { status: res.status, check: body.checks.dynamic };
}

const fetchToken = () =>
  fetch(`${broker.url}/v1/secrets/bao-token`, {
    headers: { authorization: `Bearer ${issuer.mint()}` },
  });

it('says at start and in /readyz that it cannot check the role without read on it', async () => {
  const line = logs.entries().find((l) => l.msg === 'dynamic secrets cannot be issued or checked');
  expect(line).toMatchObject({ level: 40, check: 'dynamic', role: names.buildTokenRole });
  expect(String(line?.detail)).toContain(
    `cannot tell whether token role ${names.buildTokenRole} exists (needed by 1 dynamic secret)`,
  );
  const ready = await dynamicCheck();
  expect(ready.status).toBe(200);
  expect(ready.check).toEqual({ status: 'degraded', detail: line?.detail });
  expect((await fetchToken()).status).toBe(502);
});

it('with the compiled ACL says the role is missing and how to create it; ok once it exists', async () => {
  await bao.admin.putAclPolicy(brokerPolicy, compiledPolicy);
  await until(
    async () => (await dynamicCheck()).check?.detail.includes('does not exist') ?? false,
    10000,
  );
  const missing = await dynamicCheck();
  expect(missing.status).toBe(200);
  expect(missing.check).toEqual({
    status: 'degraded',
    detail:
      `token role ${names.buildTokenRole} does not exist in OpenBao: 1 dynamic secret cannot ` +
      'be issued (fetches answer 502); `zsb policy compile --apply` creates it',
  });
  expect(logs.text()).toContain('does not exist in OpenBao');

  const loaded = parsePolicyFiles([{ name: 'dynamic.yaml', text: policyYaml }], {
    maxTtlSeconds: 3600,
  });
  if (!loaded.ok) throw new Error('fixture');
  await bao.admin.putTokenRole(names.buildTokenRole, {
    ...compileOpenBaoSetup(loaded.set, names).buildTokenRole,
  });
  await until(async () => (await dynamicCheck()).check?.status === 'ok', 10000);
  expect((await dynamicCheck()).check).toEqual({
    status: 'ok',
    detail: `token role ${names.buildTokenRole} present for 1 dynamic secret`,
  });
  expect((await fetchToken()).status).toBe(200);
}, 30000);
