/**
 * `zsb` loads only the module of the command named on its command line (src/cli/index.ts):
 * a serving broker keeps no policy report, backup tooling or playground in memory, while
 * help still lists every command and every command still runs.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runZsb } from '../../support/cli.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const TSX = pathToFileURL(path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-cli-loading-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs the CLI from the sources and returns the project modules it loaded (paths under src/). */
async function loadedModules(args: string[]): Promise<{ code: number; modules: string[] }> {
  const log = path.join(dir, `modules-${args[0] ?? 'none'}.txt`);
  // A module loader hook, in a data: URL, appending every file URL it loads to `log`.
  const hook = `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  if (url.startsWith('file:')) appendFileSync(${JSON.stringify(log)}, url + '\\n');
  return next(url, context);
}`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(
    `data:text/javascript,${encodeURIComponent(hook)}`,
  )});`;
  const code = await new Promise<number>((resolve) => {
    execFile(
      process.execPath,
      [
        '--import',
        TSX,
        '--import',
        `data:text/javascript,${encodeURIComponent(register)}`,
        path.join(ROOT, 'src/cli/index.ts'),
        ...args,
      ],
      { cwd: ROOT, env: { ...process.env, ZSB_CONFIG: '' } },
      (error) => resolve(error === null ? 0 : typeof error.code === 'number' ? error.code : 1),
    );
  });
  const text = await readFile(log, 'utf8').catch(() => '');
  const src = `${pathToFileURL(path.join(ROOT, 'src')).href}/`;
  const modules = text
    .split('\n')
    .filter((url) => url.startsWith(src))
    .map((url) => url.slice(src.length).replace(/\?.*$/, ''));
  return { code, modules: [...new Set(modules)] };
}

describe('zsb loads the command it runs', () => {
  it('serve loads serve and the broker, none of the other commands', async () => {
    // Without a configuration serve stops before it connects anywhere: its imports are done.
    const { code, modules } = await loadedModules(['serve']);
    expect(code).toBe(1);
    expect(modules).toContain('cli/serve.ts');
    expect(modules).toContain('main.ts');
    for (const other of [
      'cli/policy.ts',
      'cli/policy-report.ts',
      'policy/report/html.ts',
      'cli/backup.ts',
      'cli/dev.ts',
      'dev/playground.ts',
      'cli/import-zuul-secrets.ts',
      'cli/rotate.ts',
    ]) {
      expect(modules).not.toContain(other);
    }
  }, 60000);

  it('policy loads the policy commands and not serve', async () => {
    const { code, modules } = await loadedModules(['policy', 'check', path.join(ROOT, 'policies')]);
    expect(code).toBe(0);
    expect(modules).toContain('cli/policy.ts');
    expect(modules).not.toContain('cli/serve.ts');
    expect(modules).not.toContain('cli/backup.ts');
  }, 60000);

  it('help lists every command', async () => {
    const run = await runZsb('--help');
    expect(run.code).toBe(0);
    for (const command of [
      'serve',
      'dev',
      'policy',
      'import-zuul-secrets',
      'rotate',
      'rotation',
      'backup',
    ]) {
      expect(run.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
  }, 60000);

  it('a mistyped command is a usage error that names the closest command', async () => {
    const run = await runZsb('servx');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("unknown command 'servx'");
    expect(run.stderr).toContain('Did you mean serve?');
  }, 60000);

  it('rotation, which shares its module with rotate, still has its subcommand', async () => {
    const run = await runZsb('rotation', '--help');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('status');
  }, 60000);
});
