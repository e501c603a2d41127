/**
 * podman for the deployment suite, with the project's own configuration and image storage
 * (.deploy-tools/containers/, written by scripts/setup-deploy.sh): nothing of the machine's
 * /etc/containers or /var/lib/containers is used. Every command's output is captured for
 * the whole-run canary scan. A missing set-up fails loudly, never skips.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { captureText } from '../../support/canary.js';
import { ROOT } from '../../support/process.js';

export const TOOLS = path.join(ROOT, '.deploy-tools');
const CONF = path.join(TOOLS, 'containers');

/** The local Debian trixie bases of scripts/setup-deploy.sh (no registry is reachable). */
export const BASE_IMAGE = 'localhost/zsb-base-node20:trixie';
export const BUILD_IMAGE = 'localhost/zsb-build-node20:trixie';
/** The broker image the suite builds from the Dockerfile. */
export const BROKER_IMAGE = 'localhost/zuul-secrets-broker:ci';

export function podmanEnv(): NodeJS.ProcessEnv {
  const conf = path.join(CONF, 'containers.conf');
  if (!existsSync(conf)) {
    throw new Error(`${conf} is missing: run \`npm run setup:deploy\` first (as root)`);
  }
  return {
    ...process.env,
    CONTAINERS_CONF: conf,
    CONTAINERS_STORAGE_CONF: path.join(CONF, 'storage.conf'),
    // Docker's image format (keeps the Dockerfile's HEALTHCHECK), for `podman build` and
    // podman-compose's builds alike, so that the two share their cached layers.
    BUILDAH_FORMAT: 'docker',
  };
}

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

export interface RunOptions {
  readonly kind?: string;
  readonly timeoutMs?: number;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** false only for a command whose output is a secret the test reads on purpose. */
  readonly capture?: boolean;
}

/** Runs a command to its end; output captured as `kind` for the canary scan. */
export function run(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? podmanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${command} cannot start: ${error.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const kind = options.kind ?? `${path.basename(command)} ${args[0] ?? ''}`;
      if (options.capture !== false) captureText(`${kind} stdout`, stdout);
      captureText(`${kind} stderr`, stderr);
      resolve({ code, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}

/** podman ARGS, which must succeed; the error carries the tail of its output. */
export async function podman(args: readonly string[], options: RunOptions = {}): Promise<Run> {
  const result = await run('podman', args, options);
  if (result.code !== 0) {
    const tail = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-25).join('\n');
    throw new Error(`podman ${args.join(' ')} exited ${result.code}:\n${tail}`);
  }
  return result;
}

/** Builds the broker image from the Dockerfile on the local bases (cached layers reused). */
export async function buildBrokerImage(): Promise<Run> {
  return podman(
    [
      'build',
      '--build-arg',
      `BASE_IMAGE=${BASE_IMAGE}`,
      '--build-arg',
      `BUILD_IMAGE=${BUILD_IMAGE}`,
      '-t',
      BROKER_IMAGE,
      '.',
    ],
    { timeoutMs: 600000, kind: 'podman build' },
  );
}

/** A TCP port free on loopback right now (for host-network containers and published ports). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === 'string') reject(new Error('no port'));
        else resolve(address.port);
      });
    });
  });
}
