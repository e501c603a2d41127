/**
 * The clouds.yaml ready file with a real client: an application credential created in a
 * real Keystone (PyPI keystone, test/support/keystone.ts) is put into the real OpenBao,
 * fetched through a real broker as `render: clouds.yaml`, written as a 0600 file, and the
 * real openstacksdk (PyPI, .venv-openstack/, scripts/setup-openstacksdk.sh) authenticates
 * with it (OS_CLIENT_CONFIG_FILE, OS_CLOUD) and gets a token for the credential's project.
 * A credential with a wrong secret must make the same client fail, or the test proves
 * nothing.
 */
import { execFile } from 'node:child_process';
import { access, constants, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureText, registerCanary } from '../support/canary.js';
import { brokerCall } from '../support/http.js';
import {
  createProjectUser,
  type Keystone,
  type KeystoneUser,
  passwordToken,
  startKeystone,
} from '../support/keystone.js';
import { type PolicyBroker, startPolicyBroker } from '../support/policy-broker.js';
import { ROOT } from '../support/process.js';

const PYTHON = path.join(ROOT, '.venv-openstack', 'bin', 'python');
const CLOUD = 'scs-compliance';

/** Authenticates as openstacksdk does for a job, and prints what it learnt (no token). */
const AUTHENTICATE = `
import importlib.metadata, json, os, openstack
conn = openstack.connect(cloud=os.environ["OS_CLOUD"])
token = conn.authorize()
print(json.dumps({"version": importlib.metadata.version("openstacksdk"), "project": conn.current_project_id,
                  "authenticated": bool(token)}))
`;

interface Credential {
  readonly id: string;
  readonly secret: string;
}

/** POST /v3/users/{id}/application_credentials with the user's own token: id and secret, once. */
async function createApplicationCredential(keystone: Keystone, user: KeystoneUser) {
  const token = await passwordToken(keystone.authUrl, {
    username: user.name,
    password: user.password,
    projectName: user.projectName,
  });
  const response = await fetch(`${keystone.authUrl}/users/${user.id}/application_credentials`, {
    method: 'POST',
    headers: { 'x-auth-token': token, 'content-type': 'application/json' },
    body: JSON.stringify({ application_credential: { name: 'zsb-ready-files' } }),
    signal: AbortSignal.timeout(10000),
  });
  if (response.status !== 201) {
    throw new Error(`Keystone refused the application credential: ${response.status}`);
  }
  const body = (await response.json()) as { application_credential: Credential };
  registerCanary(body.application_credential.secret);
  return body.application_credential;
}

const run = promisify(execFile);

/** Runs the openstacksdk snippet against a clouds.yaml; its output goes to the canary scan. */
async function authenticateWith(file: string, home: string) {
  try {
    const { stdout, stderr } = await run(PYTHON, ['-c', AUTHENTICATE], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: home,
        OS_CLIENT_CONFIG_FILE: file,
        OS_CLOUD: CLOUD,
        NO_PROXY: '127.0.0.1,localhost',
        no_proxy: '127.0.0.1,localhost',
      },
      timeout: 60000,
    });
    captureText('openstacksdk stdout', stdout);
    captureText('openstacksdk stderr', stderr);
    return { ok: true as const, result: JSON.parse(stdout.trim()) as Record<string, unknown> };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number };
    captureText('openstacksdk stdout', e.stdout ?? '');
    captureText('openstacksdk stderr', e.stderr ?? '');
    return { ok: false as const, code: e.code, stderr: e.stderr ?? '' };
  }
}

let keystone: Keystone;
let env: PolicyBroker;
let credential: Credential;
let user: KeystoneUser;
let work: string;

const policy = (authUrl: string, region: string) => `
secrets:
  compliance-clouds:
    kv: { mount: secret, path: "{prefix}/clouds", keys: [application_credential_id, application_credential_secret] }
    render: { format: clouds.yaml, cloud: ${CLOUD}, authUrl: "${authUrl}", region: ${region}, interface: public }
  tampered-clouds:
    kv: { mount: secret, path: "{prefix}/tampered" }
    render: { format: clouds.yaml, cloud: ${CLOUD}, authUrl: "${authUrl}", region: ${region}, interface: public }
grants:
  - name: compliance-checks
    match: { tenant: scs, project: github.com/SovereignCloudStack/standards }
    allow: [compliance-clouds, tampered-clouds]
`;

beforeAll(async () => {
  await access(PYTHON, constants.X_OK).catch(() => {
    throw new Error(`${PYTHON} is missing: run \`npm run setup:openstacksdk\``);
  });
  work = await mkdtemp(path.join(tmpdir(), 'zsb-openstacksdk-'));
  keystone = await startKeystone();
  user = await createProjectUser(keystone, {
    user: 'scs-compliance-ci',
    project: 'scs-compliance',
  });
  credential = await createApplicationCredential(keystone, user);
  env = await startPolicyBroker('openstacksdk', policy(keystone.authUrl, keystone.region), {
    clouds: {
      application_credential_id: credential.id,
      application_credential_secret: credential.secret,
    },
    tampered: {
      application_credential_id: credential.id,
      // Keystone hashes the secret with bcrypt, which reads only its first 72 bytes: a suffix
      // would still authenticate, so the change is at the start.
      application_credential_secret: `wrong-${credential.secret.slice(6)}`,
    },
  });
}, 180000);

afterAll(async () => {
  await env?.close();
  await keystone?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Fetches one secret through the broker and writes its ready file as the role does. */
async function fetchCloudsYaml(name: string): Promise<string> {
  const res = await brokerCall(env.broker.url, 'POST', '/v1/fetch', env.issuer.mint(), {
    secrets: [name],
  });
  expect(res.status).toBe(200);
  const entry = (
    res.body.secrets as Record<string, { file?: { format: string; content: string } }>
  )[name];
  expect(entry?.file?.format).toBe('clouds.yaml');
  const file = path.join(work, `${name}.yaml`);
  await writeFile(file, entry?.file?.content ?? '', { mode: 0o600 });
  expect((await stat(file)).mode & 0o777).toBe(0o600);
  return file;
}

describe('clouds.yaml from the broker with openstacksdk and a real Keystone', () => {
  it('authenticates with the application credential and is scoped to its project', async () => {
    const file = await fetchCloudsYaml('compliance-clouds');
    const outcome = await authenticateWith(file, work);
    expect(outcome.ok, outcome.ok ? '' : `openstacksdk failed (exit ${outcome.code})`).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.result).toEqual({
      version: '4.22.0',
      project: user.projectId,
      authenticated: true,
    });
  });

  it('fails to authenticate with a wrong secret in the same file shape', async () => {
    const file = await fetchCloudsYaml('tampered-clouds');
    const outcome = await authenticateWith(file, work);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.stderr).toMatch(/401|Unauthorized|could not be found/i);
  });
});
