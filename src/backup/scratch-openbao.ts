/**
 * A scratch single-node OpenBao: raft storage in a fresh directory, the static seal with a
 * given key, `performance_multiplier = 1` (active about 1.7 s after init instead of 10 s),
 * a free loopback port, initialised with one recovery share. Snapshot verification restores
 * into one and throws it away; the restore drill and the tests start their clusters with it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createOpenBaoClient } from '../openbao/client.js';
import type { KvReader } from '../openbao/interface.js';
import { initializeRecoveryOnly } from '../openbao/snapshot.js';

export interface ScratchOpenBaoOptions {
  readonly binary: string;
  /** The static seal: a 32-byte key file and its id (`current_key_id`). */
  readonly sealKeyFile: string;
  readonly sealKeyId: string;
  /** Where the node's directory goes (a fresh one inside it); the OS temp dir otherwise. */
  readonly parentDir?: string;
  /** A data directory to use (and keep) instead of a fresh temporary one. */
  readonly dataDir?: string;
  readonly startTimeoutMs?: number;
}

export interface ScratchOpenBao {
  readonly address: string;
  /** The node's own directory (config, data); removed by stop() unless `dataDir` was given. */
  readonly dir: string;
  /** Initialises the node (one recovery share); resolves with its root token once active. */
  initialize(): Promise<{ readonly rootToken: string }>;
  /** Resolves when `sys/health` answers 200 (unsealed and active). */
  waitActive(timeoutMs: number): Promise<void>;
  /** A KV reader as `token` (e.g. a token of the cluster a snapshot came from). */
  reader(token: string): KvReader;
  /** Kills the process (SIGKILL) and removes its directory. */
  stop(): Promise<void>;
  /** Kills the process and keeps its data (a node that crashed). */
  kill(): Promise<void>;
}

export class ScratchOpenBaoError extends Error {
  override readonly name = 'ScratchOpenBaoError';
}

async function freePort(): Promise<number> {
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

/** HCL string literal: the paths are ours, but a quote in one must not end the string. */
function hcl(value: string): string {
  return JSON.stringify(value);
}

function configText(dataDir: string, port: number, clusterPort: number, o: ScratchOpenBaoOptions) {
  return `storage "raft" {
  path = ${hcl(dataDir)}
  node_id = "scratch"
  performance_multiplier = 1
}
listener "tcp" {
  address = "127.0.0.1:${port}"
  cluster_address = "127.0.0.1:${clusterPort}"
  tls_disable = true
}
seal "static" {
  current_key_id = ${hcl(o.sealKeyId)}
  current_key = ${hcl(`file://${path.resolve(o.sealKeyFile)}`)}
}
api_addr = "http://127.0.0.1:${port}"
cluster_addr = "https://127.0.0.1:${clusterPort}"
ui = false
`;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function killProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

async function startOnce(options: ScratchOpenBaoOptions): Promise<ScratchOpenBao> {
  const dir = await mkdtemp(path.join(options.parentDir ?? tmpdir(), 'zsb-bao-'));
  const dataDir = options.dataDir ?? path.join(dir, 'data');
  const port = await freePort();
  const clusterPort = await freePort();
  const address = `http://127.0.0.1:${port}`;
  const configFile = path.join(dir, 'config.hcl');
  await writeFile(configFile, configText(dataDir, port, clusterPort, options), { mode: 0o600 });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const child = spawn(options.binary, ['server', `-config=${configFile}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    // Nothing of ours (BAO_TOKEN, VAULT_*) reaches the scratch server.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
  });
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  });
  const spawnFailed = new Promise<never>((_, reject) =>
    child.once('error', (error) =>
      reject(
        new ScratchOpenBaoError(
          `cannot start ${options.binary}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
        ),
      ),
    ),
  );
  spawnFailed.catch(() => undefined);
  const health = createOpenBaoClient({
    addresses: [address],
    timeoutMs: 2000,
    maxConnections: 2,
    maxAttempts: 1,
    token: () => '',
  });
  const removeAll = async () => {
    if (options.dataDir === undefined) await rm(dir, { recursive: true, force: true });
    else await rm(configFile, { force: true });
  };
  const exited = () => child.exitCode !== null || child.signalCode !== null;

  const node: ScratchOpenBao = {
    address,
    dir,
    async initialize() {
      const { rootToken } = await initializeRecoveryOnly(address, 10_000);
      await node.waitActive(options.startTimeoutMs ?? 30_000);
      return { rootToken };
    },
    async waitActive(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (exited()) {
          throw new ScratchOpenBaoError(
            `scratch OpenBao exited (code ${child.exitCode ?? child.signalCode}); its log ends: ${lastLines(tail)}`,
          );
        }
        if ((await health.health()).status === 'ok') return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new ScratchOpenBaoError(
        `scratch OpenBao at ${address} not active within ${timeoutMs} ms`,
      );
    },
    reader(token) {
      return createOpenBaoClient({
        addresses: [address],
        timeoutMs: 5000,
        maxConnections: 2,
        maxAttempts: 1,
        token: () => token,
      });
    },
    async stop() {
      // A scratch node holds nothing worth a graceful shutdown (which takes about 2 s).
      await killProcess(child);
      await removeAll();
    },
    async kill() {
      await killProcess(child);
    },
  };

  // Listening: `sys/health` answers (501 while not initialised).
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (exited()) {
      await removeAll();
      throw new ScratchOpenBaoError(
        `scratch OpenBao exited at start (code ${child.exitCode ?? child.signalCode}); its log ends: ${lastLines(tail)}`,
      );
    }
    const state = await Promise.race([health.health(), spawnFailed]).catch(async (error) => {
      await removeAll();
      throw error;
    });
    if (state.status !== 'unreachable') return node;
    if (Date.now() > deadline) {
      await stopProcess(child);
      await removeAll();
      throw new ScratchOpenBaoError(`scratch OpenBao did not listen within the start timeout`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The server's own log (no tokens or values: it logs neither), shortened for a message. */
function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ').slice(0, 600);
}

/** Starts a scratch node; tries again on a lost race for a free port. */
export async function startScratchOpenBao(options: ScratchOpenBaoOptions): Promise<ScratchOpenBao> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      lastError = error;
      if (!String((error as Error).message).includes('address already in use')) break;
    }
  }
  throw lastError;
}
