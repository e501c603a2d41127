/**
 * A throw-away real container registry (Debian's docker-registry, distribution 2.8) with
 * htpasswd authentication, on a free loopback port, storage in a temporary directory. It
 * rereads the htpasswd file when it changes, without a restart. Fails loudly when it
 * cannot start (`npm run setup:credentials` installs it).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freeLoopbackPort, stopProcess } from '../../src/dev/openbao-dev-server.js';
import { registerCanary } from './canary.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';
export const HTPASSWD_BIN = '/usr/bin/htpasswd';

export interface Registry {
  /** e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly htpasswdFile: string;
  readonly startMs: number;
  /** The status of `GET /v2/` with these credentials: 200 accepted, 401 refused. */
  login(username: string, password: string): Promise<number>;
  stop(): Promise<void>;
}

function need(file: string): void {
  try {
    accessSync(file, constants.X_OK);
  } catch {
    throw new Error(
      `the registry cannot start: ${file} is missing (run \`npm run setup:credentials\`)`,
    );
  }
}

/** Starts a registry whose htpasswd file holds `username` with `password`. */
export async function startRegistry(username: string, password: string): Promise<Registry> {
  need(REGISTRY_BIN);
  need(HTPASSWD_BIN);
  registerCanary(password);
  const dir = mkdtempSync(path.join(tmpdir(), 'zsb-registry-'));
  const htpasswdFile = path.join(dir, 'htpasswd');
  execFileSync(HTPASSWD_BIN, ['-B', '-i', '-c', htpasswdFile, username], {
    input: password,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  const port = await freeLoopbackPort();
  const url = `http://127.0.0.1:${port}`;
  const config = path.join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: { level: error, accesslog: { disabled: true } }',
      `storage: { filesystem: { rootdirectory: ${path.join(dir, 'data')} } }`,
      `http: { addr: "127.0.0.1:${port}", secret: ${randomBytes(16).toString('hex')} }`,
      `auth: { htpasswd: { realm: zsb-test, path: ${htpasswdFile} } }`,
      '',
    ].join('\n'),
  );
  const started = Date.now();
  let stderr = '';
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: process.env.PATH ?? '' },
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-2000);
  });
  const login = async (user: string, pass: string) => {
    const response = await fetch(`${url}/v2/`, {
      headers: { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` },
      signal: AbortSignal.timeout(5000),
    });
    await response.body?.cancel();
    return response.status;
  };
  const stop = async () => {
    await stopProcess(child);
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`the registry cannot start: it exited: ${stderr}`);
    }
    try {
      if ((await login(username, password)) === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the registry cannot start: no answer at ${url}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, htpasswdFile, startMs: Date.now() - started, login, stop };
}
