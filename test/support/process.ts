/** Runs the real `zsb` CLI as a child process (through tsx, so the sources are tested). */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { captureStream, captureText } from './canary.js';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CLI = path.join(ROOT, 'src', 'cli', 'index.ts');
// An absolute loader URL: the child may run in a directory without node_modules.
const TSX = pathToFileURL(path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const NODE_ARGS = ['--import', TSX, CLI];

export function spawnZsb(
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): ChildProcess {
  const child = spawn(process.execPath, [...NODE_ARGS, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  captureStream('child stdout', child.stdout);
  captureStream('child stderr', child.stderr);
  return child;
}

export async function runZsb(
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [...NODE_ARGS, ...args],
      {
        cwd: options.cwd,
        env: { ...process.env, ...options.env },
        timeout: 30000,
      },
    );
    captureText('child stdout', stdout);
    captureText('child stderr', stderr);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    captureText('child stdout', e.stdout ?? '');
    captureText('child stderr', e.stderr ?? '');
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    };
  }
}

/** Resolves with the collected output of `stream` once `pattern` appears in it. */
export function waitForOutput(
  child: ChildProcess,
  pattern: RegExp,
  timeoutMs = 30000,
  stream: 'stdout' | 'stderr' = 'stdout',
): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}; stderr: ${err.slice(-2000)}`)),
      timeoutMs,
    );
    child.stderr?.on('data', (c: Buffer) => {
      err += c.toString();
      if (stream === 'stderr' && pattern.test(err)) {
        clearTimeout(timer);
        resolve(err);
      }
    });
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      if (stream === 'stdout' && pattern.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(
        new Error(`process exited with ${code} before ${pattern}; stderr: ${err.slice(-2000)}`),
      );
    });
  });
}

export function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
