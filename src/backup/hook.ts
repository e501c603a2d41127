/**
 * The ship hook: a command run after each verified backup to copy it off the machine
 * (`rclone copy`, `s3cmd put`, `scp`, …). It gets the snapshot and manifest paths as its
 * last two arguments and as ZSB_BACKUP_FILE / ZSB_BACKUP_MANIFEST / ZSB_BACKUP_DIR. Its
 * environment is built from nothing but PATH, HOME and those (plus what the configuration
 * names explicitly): a token in the broker's environment never reaches it. Its output is
 * not logged (a remote's error text could echo anything); only its exit status is.
 */
import { spawn } from 'node:child_process';

export interface ShipHook {
  /** argv: the program and its first arguments; the two paths are appended. */
  readonly command: readonly string[];
  readonly timeoutMs: number;
  /** Extra environment variables, e.g. RCLONE_CONFIG (names and values from the config). */
  readonly env?: Readonly<Record<string, string>>;
}

export class ShipFailed extends Error {
  override readonly name = 'ShipFailed';
}

export async function runShipHook(
  hook: ShipHook,
  files: { readonly snapshot: string; readonly manifest: string; readonly dir: string },
): Promise<void> {
  const [program, ...args] = hook.command;
  if (program === undefined) throw new ShipFailed('ship hook has no command');
  await new Promise<void>((resolve, reject) => {
    const child = spawn(program, [...args, files.snapshot, files.manifest], {
      stdio: ['ignore', 'ignore', 'ignore'],
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/',
        ...hook.env,
        ZSB_BACKUP_FILE: files.snapshot,
        ZSB_BACKUP_MANIFEST: files.manifest,
        ZSB_BACKUP_DIR: files.dir,
      },
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new ShipFailed(`ship hook ${program} timed out after ${hook.timeoutMs} ms`));
    }, hook.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(
        new ShipFailed(
          `ship hook ${program} could not start (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        ),
      );
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new ShipFailed(`ship hook ${program} failed (${signal ?? `exit code ${code}`})`));
    });
  });
}
