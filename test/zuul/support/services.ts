/**
 * Processes of the real-Zuul suite: each real server runs in a process group of its own
 * (so a stop also ends what it spawned: Zuul's executor runs bubblewrap and
 * ansible-playbook), with stdout and stderr in a log file of the run directory. Every
 * wait is bounded and fails with the service's log tail.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';

export interface Service {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
}

/** Only what the servers need: no proxy variables, no pyenv shims, no caller's secrets. */
export function serviceEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
    ...extra,
  };
}

export function startService(
  name: string,
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; logFile: string },
): Service {
  const fd = openSync(options.logFile, 'a', 0o600);
  try {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    child.once('error', () => undefined);
    return { name, child, logFile: options.logFile };
  } finally {
    closeSync(fd);
  }
}

/**
 * Redacts what could be a secret before a log line goes into a failure message: values
 * with the canary prefix (the suite's seeded secrets) and anything shaped like a JWT.
 * The logs hold neither (the suite checks that); a leak must not be repeated in the
 * test report.
 */
export function redact(text: string): string {
  return text
    .replace(/zsb-canary-[A-Za-z0-9_-]*/g, '<redacted canary>')
    .replace(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '<redacted JWT>');
}

/** The last `lines` lines of a service's log, redacted, for failure messages. */
export function logTail(file: string, lines = 40): string {
  try {
    return redact(readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n'));
  } catch {
    return '(no log)';
  }
}

export function running(service: Service): boolean {
  return service.child.exitCode === null && service.child.signalCode === null;
}

/** SIGTERM to the service's process group, SIGKILL to it after `graceMs`. */
export async function stopService(service: Service, graceMs = 15000): Promise<void> {
  const pid = service.child.pid;
  if (pid === undefined) return;
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      // The group is gone already.
    }
  };
  if (running(service)) {
    const exited = new Promise<void>((resolve) => service.child.once('exit', () => resolve()));
    signalGroup('SIGTERM');
    const timer = new Promise<'timeout'>((resolve) =>
      setTimeout(() => resolve('timeout'), graceMs).unref(),
    );
    await Promise.race([exited, timer]);
  }
  // Children that outlived their parent (ansible-playbook, ssh-agent) go too.
  signalGroup('SIGKILL');
}

/**
 * Polls `probe` until it returns a value (not undefined), at most `timeoutMs`. Fails
 * with `what`, the last probe error and the tails of the given services' logs; also as
 * soon as one of `services` has exited.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  options: { timeoutMs: number; services?: readonly Service[]; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError = '';
  for (;;) {
    for (const service of options.services ?? []) {
      if (!running(service)) {
        throw new Error(
          `${service.name} exited (code ${service.child.exitCode}, signal ${service.child.signalCode}) ` +
            `while waiting for ${what}; last lines of ${service.logFile}:\n${logTail(service.logFile)}`,
        );
      }
    }
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) {
      const tails = (options.services ?? [])
        .map((s) => `--- last lines of ${s.name} (${s.logFile}) ---\n${logTail(s.logFile)}`)
        .join('\n');
      throw new Error(
        `timed out after ${options.timeoutMs} ms waiting for ${what}` +
          `${lastError ? ` (last error: ${lastError})` : ''}\n${tails}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
  }
}

/** The environment variable that marks every process of one run (see killMarked). */
export const RUN_MARKER = 'ZSB_ZUUL_SUITE_RUN';

/**
 * SIGKILLs the processes whose environment carries `RUN_MARKER=<run>`: what the run's
 * services started and left behind outside their process groups. Zuul's executor starts
 * an ssh-agent per build, which puts itself in a session of its own, so a build still
 * running at shutdown leaves its agent behind. Only processes of this run carry the
 * marker; returns how many were ended.
 */
export function killMarked(run: string): number {
  const marker = `${RUN_MARKER}=${run}`;
  let killed = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
    } catch {
      continue; // gone, or not ours to read
    }
    if (!environ.split('\0').includes(marker)) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
      killed += 1;
    } catch {
      // exited meanwhile
    }
  }
  return killed;
}
