/**
 * A throw-away real OpenStack Keystone (PyPI keystone, installed by
 * `npm run setup:keystone` into .venv-keystone/) for tests: sqlite and fernet keys in a
 * temporary directory, `keystone-manage db_sync`, `fernet_setup`, `credential_setup`,
 * `bootstrap` (an admin user, project and role), then gunicorn serving
 * `keystone.server.wsgi.initialize_public_application()` on a free loopback port.
 *
 * It fails loudly when Keystone cannot be installed or started: tests that need it never
 * run against a fake. Pitfalls it works around (measured with keystone 30.0.0):
 * - the wheel ships no `keystone-wsgi-public` script: a small wrapper module builds the app;
 * - oslo.config parses the process's argv (gunicorn's own options) unless the wrapper
 *   resets `sys.argv` before the app is built;
 * - `keystone-manage` ignores OS_KEYSTONE_CONFIG_FILES (it would write under /etc), so
 *   every call names `--config-file`; the server reads the same file from that variable.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freeLoopbackPort, stopProcess } from '../../src/dev/openbao-dev-server.js';
import { registerCanary } from './canary.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const DEFAULT_VENV = path.join(ROOT, '.venv-keystone');

export interface KeystoneAdmin {
  readonly username: string;
  readonly password: string;
  readonly projectName: string;
  readonly userDomainName: string;
  readonly projectDomainName: string;
}

export interface Keystone {
  /** The identity endpoint, e.g. `http://127.0.0.1:41234/v3` (what clouds.yaml calls auth_url). */
  readonly authUrl: string;
  readonly region: string;
  readonly admin: KeystoneAdmin;
  /** Keystone's version as the server reports it (`GET /v3`). */
  readonly version: string;
  /** Milliseconds spent in keystone-manage (set-up) and until the server answered (start). */
  readonly timings: { readonly setupMs: number; readonly startMs: number };
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

export interface KeystoneOptions {
  /** Virtualenv with keystone and gunicorn (default: the project's .venv-keystone/). */
  readonly venv?: string;
  readonly startTimeoutMs?: number;
  /**
   * bcrypt rounds for passwords and application-credential secrets. Keystone's default
   * (12) costs about 0.25 s per login on an idle core and seconds on a loaded machine;
   * tests use the minimum (4) unless they measure production-like timings.
   */
  readonly passwordHashRounds?: number;
}

/** oslo.config must not see gunicorn's argv; the app is built once per worker. */
const WSGI_WRAPPER = `import sys
sys.argv = [sys.argv[0]]
from keystone.server import wsgi
application = wsgi.initialize_public_application()
`;

function executable(file: string, hint: string): string {
  try {
    accessSync(file, constants.X_OK);
    return file;
  } catch {
    throw new Error(`Keystone cannot start: ${file} is missing (${hint})`);
  }
}

function configFile(dir: string, port: number, hashRounds: number): string {
  return [
    '[DEFAULT]',
    `public_endpoint = http://127.0.0.1:${port}/`,
    'use_stderr = true',
    '[database]',
    `connection = sqlite:///${path.join(dir, 'keystone.db')}`,
    '[token]',
    'provider = fernet',
    '[fernet_tokens]',
    `key_repository = ${path.join(dir, 'fernet-keys')}`,
    '[fernet_receipts]',
    `key_repository = ${path.join(dir, 'fernet-keys')}`,
    '[credential]',
    `key_repository = ${path.join(dir, 'credential-keys')}`,
    '[cache]',
    'enabled = false',
    '[identity]',
    `password_hash_rounds = ${hashRounds}`,
    '',
  ].join('\n');
}

async function manage(
  bin: string,
  config: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<void> {
  try {
    await promisify(execFile)(bin, ['--config-file', config, ...args], {
      env,
      timeout: 120000,
      maxBuffer: 4 * 1024 * 1024,
    });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    // The tail says what failed (the bootstrap password is in the environment, not argv).
    throw new Error(
      `Keystone cannot start: keystone-manage ${args[0]} failed: ${(e.stderr ?? e.message).slice(-2000)}`,
    );
  }
}

/** Polls `GET /v3` until Keystone answers 200; throws with the server's stderr otherwise. */
async function waitUntilServing(
  child: ChildProcess,
  authUrl: string,
  timeoutMs: number,
  stderrTail: () => string,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`Keystone cannot start: gunicorn exited: ${stderrTail()}`);
    }
    try {
      const response = await fetch(authUrl, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) {
        const body = (await response.json()) as { version?: { id?: string } };
        return body.version?.id ?? 'unknown';
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(
    `Keystone cannot start: no answer at ${authUrl} in ${timeoutMs} ms: ${stderrTail()}`,
  );
}

async function startOnce(options: KeystoneOptions): Promise<Keystone> {
  const venv = options.venv ?? DEFAULT_VENV;
  const hint = 'run `npm run setup:keystone`';
  const manageBin = executable(path.join(venv, 'bin', 'keystone-manage'), hint);
  const gunicorn = executable(path.join(venv, 'bin', 'gunicorn'), hint);
  const dir = mkdtempSync(path.join(tmpdir(), 'zsb-keystone-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  let child: ChildProcess | undefined;
  try {
    const port = await freeLoopbackPort();
    const authUrl = `http://127.0.0.1:${port}/v3`;
    const config = path.join(dir, 'keystone.conf');
    writeFileSync(config, configFile(dir, port, options.passwordHashRounds ?? 4), {
      mode: 0o600,
    });
    writeFileSync(path.join(dir, 'zsb_keystone_wsgi.py'), WSGI_WRAPPER);
    mkdirSync(path.join(dir, 'fernet-keys'), { mode: 0o700 });
    mkdirSync(path.join(dir, 'credential-keys'), { mode: 0o700 });
    const env = { PATH: process.env.PATH ?? '', HOME: dir, LANG: 'C.UTF-8' };
    const admin: KeystoneAdmin = {
      username: 'admin',
      password: `ksadmin${randomBytes(18).toString('base64url')}`,
      projectName: 'admin',
      userDomainName: 'Default',
      projectDomainName: 'Default',
    };
    registerCanary(admin.password);
    const me = userInfo();
    const setupStarted = Date.now();
    await manage(manageBin, config, ['db_sync'], env);
    const owner = ['--keystone-user', me.username, '--keystone-group', String(me.gid)];
    await manage(manageBin, config, ['fernet_setup', ...owner], env);
    await manage(manageBin, config, ['credential_setup', ...owner], env);
    await manage(
      manageBin,
      config,
      [
        'bootstrap',
        '--bootstrap-username',
        admin.username,
        '--bootstrap-project-name',
        admin.projectName,
        '--bootstrap-role-name',
        'admin',
        '--bootstrap-service-name',
        'keystone',
        '--bootstrap-region-id',
        'RegionOne',
        '--bootstrap-public-url',
        authUrl,
      ],
      // Not in argv: any user of the machine can read a process's argv.
      { ...env, OS_BOOTSTRAP_PASSWORD: admin.password },
    );
    const setupMs = Date.now() - setupStarted;

    const startStarted = Date.now();
    let stderr = '';
    child = spawn(
      gunicorn,
      [
        '--bind',
        `127.0.0.1:${port}`,
        '--workers',
        '1',
        '--threads',
        '4',
        '--timeout',
        '60',
        '--chdir',
        dir,
        'zsb_keystone_wsgi:application',
      ],
      {
        env: { ...env, OS_KEYSTONE_CONFIG_FILES: config },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4000);
    });
    const version = await waitUntilServing(child, authUrl, options.startTimeoutMs ?? 60000, () =>
      stderr.slice(-2000),
    );
    const running = child;
    return {
      authUrl,
      region: 'RegionOne',
      admin,
      version,
      timings: { setupMs, startMs: Date.now() - startStarted },
      async stop() {
        await stopProcess(running);
        cleanup();
      },
    };
  } catch (error) {
    if (child) await stopProcess(child);
    cleanup();
    throw error;
  }
}

/** Starts a Keystone; one retry covers a lost race for the free port. */
export async function startKeystone(options: KeystoneOptions = {}): Promise<Keystone> {
  try {
    return await startOnce(options);
  } catch (error) {
    if (/missing/.test((error as Error).message)) throw error;
    return await startOnce(options);
  }
}

/** Password credentials for `POST /v3/auth/tokens`, scoped to a project when one is named. */
export interface PasswordAuth {
  readonly username: string;
  readonly password: string;
  readonly userDomainName?: string;
  readonly projectName?: string;
  readonly projectDomainName?: string;
}

/** Issues a token with a password; throws with the status when Keystone refuses. */
export async function passwordToken(authUrl: string, auth: PasswordAuth): Promise<string> {
  const body = {
    auth: {
      identity: {
        methods: ['password'],
        password: {
          user: {
            name: auth.username,
            domain: { name: auth.userDomainName ?? 'Default' },
            password: auth.password,
          },
        },
      },
      ...(auth.projectName
        ? {
            scope: {
              project: {
                name: auth.projectName,
                domain: { name: auth.projectDomainName ?? 'Default' },
              },
            },
          }
        : {}),
    },
  };
  const response = await fetch(`${authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  await response.body?.cancel();
  const token = response.headers.get('x-subject-token');
  if (response.status !== 201 || token === null) {
    throw new Error(`Keystone refused the password login of ${auth.username}: ${response.status}`);
  }
  registerCanary(token);
  return token;
}

/** An admin token for the bootstrap admin (project-scoped, so it may manage users). */
export function adminToken(keystone: Keystone): Promise<string> {
  return passwordToken(keystone.authUrl, keystone.admin);
}

async function adminCall<T>(
  keystone: Keystone,
  token: string,
  method: string,
  route: string,
  body?: unknown,
): Promise<T> {
  const response = await fetch(`${keystone.authUrl}${route}`, {
    method,
    headers: { 'x-auth-token': token, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10000),
  });
  if (!response.ok) {
    throw new Error(`Keystone ${method} ${route}: ${response.status} ${await response.text()}`);
  }
  return (response.status === 204 ? undefined : await response.json()) as T;
}

export interface KeystoneUser {
  readonly id: string;
  readonly name: string;
  readonly password: string;
  readonly projectId: string;
  readonly projectName: string;
}

/**
 * Creates a project and a user with the `member` role on it (the shape of a CI robot
 * account); the password is random and registered as a canary.
 */
export async function createProjectUser(
  keystone: Keystone,
  names: { readonly user: string; readonly project: string },
): Promise<KeystoneUser> {
  const token = await adminToken(keystone);
  const password = `ksuser${randomBytes(18).toString('base64url')}`;
  registerCanary(password);
  const project = await adminCall<{ project: { id: string } }>(
    keystone,
    token,
    'POST',
    '/projects',
    { project: { name: names.project, domain_id: 'default' } },
  );
  const user = await adminCall<{ user: { id: string } }>(keystone, token, 'POST', '/users', {
    user: {
      name: names.user,
      domain_id: 'default',
      password,
      default_project_id: project.project.id,
    },
  });
  const roles = await adminCall<{ roles: Array<{ id: string }> }>(
    keystone,
    token,
    'GET',
    '/roles?name=member',
  );
  const member = roles.roles[0];
  if (member === undefined) throw new Error('Keystone has no member role after bootstrap');
  await adminCall(
    keystone,
    token,
    'PUT',
    `/projects/${project.project.id}/users/${user.user.id}/roles/${member.id}`,
  );
  return {
    id: user.user.id,
    name: names.user,
    password,
    projectId: project.project.id,
    projectName: names.project,
  };
}
