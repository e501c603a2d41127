/**
 * The command provider (docs/rotation.md#command-provider): for systems no built-in
 * provider covers (Harbor robot accounts, a registry's htpasswd, an internal API), the
 * policy names an executable per step. The contract:
 *
 * - input: one JSON object `{ rotation, step, runId, pending, current, previous }` on
 *   stdin (or, with `input: file`, in a 0600 file in a private 0700 directory named by
 *   ZSB_ROTATION_INPUT); values never travel in argv or the environment;
 * - environment: PATH, LANG, the declared `env`, ZSB_ROTATION, ZSB_ROTATION_STEP (and
 *   ZSB_ROTATION_INPUT); nothing else of the broker's (its OpenBao token stays its own);
 * - exit codes: 0 done; 1 from `test`: the pending value does not work (the run aborts
 *   and rolls back); 75 (EX_TEMPFAIL) or anything else: the step failed and is retried;
 * - bounds: `timeout` per call (the process group is killed), stdout at most 64 KiB (only
 *   `create` uses it: a JSON object of fields), stderr read and discarded, never logged;
 * - shutdown: when the broker stops (SIGTERM), a running step's process group gets SIGTERM,
 *   then SIGKILL after 5 s; the step's outcome is then unknown, so the run stays recorded
 *   at its step and the next holder runs that step again (idempotency, below);
 * - idempotency: every step may run again with the same runId and pending value after a
 *   crash and must then succeed without doing anything twice. A run resumed after its
 *   `test` (a crash between test and promotion) runs `test` again before it promotes:
 *   the target may have changed while no one held the run.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { KvReader } from '../../openbao/interface.js';
import type { CommandStep, CommandTarget, GenerateSpec } from '../../policy/types.js';
import {
  type CreatedValue,
  RotationConfigError,
  type RotationDriver,
  RotationInterrupted,
  RotationTestFailed,
  sameJson,
  TargetError,
} from '../driver.js';
import { generateValue } from '../generate.js';
import type { RotationRun } from '../state.js';
import type { KvSecret } from './kv.js';

export const MAX_STDOUT_BYTES = 64 * 1024;
export const EXIT_REFUSED = 1;
export const EXIT_TEMPORARY = 75;
/** How long a step has to stop after SIGTERM at shutdown before it is killed. */
export const SHUTDOWN_GRACE_MS = 5000;

export interface CommandInput {
  readonly rotation: string;
  readonly step: CommandStep;
  readonly runId?: string;
  readonly pending?: Readonly<Record<string, unknown>>;
  readonly current: Readonly<Record<string, unknown>>;
  readonly previous: Readonly<Record<string, unknown>>;
}

/** The broker's shutdown, for a step that runs when it comes. */
export interface StepShutdown {
  readonly signal: AbortSignal;
  /** SIGTERM to SIGKILL; SHUTDOWN_GRACE_MS unless a test says otherwise. */
  readonly graceMs?: number;
}

/**
 * Runs one step's executable; resolves with its stdout when it exits 0. At `shutdown` the
 * step is stopped and fails with RotationInterrupted, whatever it exits with.
 */
export async function runCommand(
  target: CommandTarget,
  input: CommandInput,
  shutdown?: StepShutdown,
): Promise<Buffer> {
  if (shutdown?.signal.aborted)
    throw new RotationInterrupted(`the ${input.step} command did not start: shutting down`);
  const argv = target.steps[input.step];
  if (argv === undefined) throw new RotationConfigError(`no ${input.step} command`);
  const [executable = '', ...args] = argv;
  const body = JSON.stringify(input);
  let dir: string | undefined;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    ...target.env,
    ZSB_ROTATION: input.rotation,
    ZSB_ROTATION_STEP: input.step,
  };
  try {
    if (target.input === 'file') {
      dir = await mkdtemp(path.join(tmpdir(), 'zsb-rotation-')); // 0700
      const file = path.join(dir, 'input.json');
      await writeFile(file, body, { mode: 0o600, flag: 'wx' });
      env.ZSB_ROTATION_INPUT = file;
    }
    return await execute(executable, args, env, target.input === 'stdin' ? body : '', {
      step: input.step,
      timeoutMs: target.timeoutSeconds * 1000,
      ...(shutdown ? { shutdown } : {}),
    });
  } finally {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}

function execute(
  executable: string,
  args: readonly string[],
  env: Record<string, string>,
  stdin: string,
  options: { step: CommandStep; timeoutMs: number; shutdown?: StepShutdown },
): Promise<Buffer> {
  const { step, shutdown } = options;
  const signal = shutdown?.signal;
  return new Promise((resolve, reject) => {
    // Its own process group, so a timeout kills whatever the executable started too.
    const child = spawn(executable, args, {
      env,
      cwd: '/',
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let failure: Error | undefined;
    const send = (name: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, name);
      } catch {
        child.kill(name);
      }
    };
    const kill = (why: Error) => {
      failure ??= why;
      send('SIGKILL');
    };
    const timer = setTimeout(
      () =>
        kill(new TargetError(`the ${step} command timed out after ${options.timeoutMs / 1000} s`)),
      options.timeoutMs,
    );
    // Shutdown: the step may finish what it does on SIGTERM; whatever it exits with, its
    // outcome is unknown to the protocol, which keeps the run to run the step again.
    let graceTimer: NodeJS.Timeout | undefined;
    const interrupt = () => {
      failure ??= new RotationInterrupted(`the ${step} command was stopped: shutting down`);
      send('SIGTERM');
      graceTimer = setTimeout(() => send('SIGKILL'), shutdown?.graceMs ?? SHUTDOWN_GRACE_MS);
    };
    signal?.addEventListener('abort', interrupt, { once: true });
    const settled = () => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      signal?.removeEventListener('abort', interrupt);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_STDOUT_BYTES) {
        kill(new TargetError(`the ${step} command printed more than ${MAX_STDOUT_BYTES} bytes`));
      } else {
        chunks.push(chunk);
      }
    });
    // Never logged: it may echo a value. Drained so the executable does not block.
    child.stderr.resume();
    // An executable that does not read its input closes the pipe early: not an error.
    child.stdin.on('error', () => {});
    child.stdin.end(stdin);
    child.once('error', (error: NodeJS.ErrnoException) => {
      settled();
      reject(new TargetError(`the ${step} command cannot run (${error.code ?? 'error'})`));
    });
    child.once('close', (code, killedBy) => {
      settled();
      if (failure !== undefined) reject(failure);
      else if (code === 0) resolve(Buffer.concat(chunks));
      else if (step === 'test' && code === EXIT_REFUSED) {
        reject(new RotationTestFailed('the test command refused the pending value (exit 1)'));
      } else if (code === EXIT_TEMPORARY) {
        reject(new TargetError(`the ${step} command failed temporarily (exit 75)`));
      } else if (code !== null) {
        reject(new TargetError(`the ${step} command failed (exit ${code})`));
      } else {
        reject(new TargetError(`the ${step} command was killed (${killedBy ?? 'signal'})`));
      }
    });
  });
}

/** The fields `create` printed: one JSON object, merged over the current value. */
function createdFields(stdout: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new RotationConfigError('the create command did not print a JSON object');
  }
  return parsed as Record<string, unknown>;
}

export function createCommandDriver(
  openbao: KvReader,
  secret: KvSecret,
  target: CommandTarget,
  options: {
    readonly rotation: string;
    readonly generate?: GenerateSpec;
    /** The broker's shutdown (see runCommand). */
    readonly shutdown?: StepShutdown;
  },
): RotationDriver {
  /** The value the run started from (KV version `base`), for finish and rollback. */
  async function previousOf(run: RotationRun): Promise<Record<string, unknown>> {
    const base = Number(run.base);
    if (!(base > 0)) return {};
    const entry = await openbao.kvRead(secret.ref.mount, secret.ref.path, { version: base });
    return { ...(entry?.data ?? {}) };
  }
  async function step(name: CommandStep, run: RotationRun): Promise<void> {
    if (target.steps[name] === undefined) return;
    const [current, previous] = await Promise.all([secret.current(), previousOf(run)]);
    await runCommand(
      target,
      {
        rotation: options.rotation,
        step: name,
        runId: run.id,
        pending: run.pending,
        current: current.data,
        previous,
      },
      options.shutdown,
    );
  }

  // Whether this process saw `test` pass for the run; a resumed run has not.
  let testedHere: string | undefined;

  return {
    async create(): Promise<CreatedValue> {
      const current = await secret.current();
      if (target.steps.create !== undefined) {
        const stdout = await runCommand(
          target,
          {
            rotation: options.rotation,
            step: 'create',
            current: current.data,
            previous: current.data,
          },
          options.shutdown,
        );
        return { base: current.version, pending: { ...current.data, ...createdFields(stdout) } };
      }
      if (options.generate === undefined) {
        throw new RotationConfigError('a command rotation needs generate or a create command');
      }
      return {
        base: current.version,
        pending: { ...current.data, ...generateValue(options.generate) },
      };
    },
    checkUnchanged: (run) => secret.checkUnchanged(run),
    set: (run) => step('set', run),
    async test(run) {
      await step('test', run);
      testedHere = run.id;
    },
    async promote(run) {
      const latest = await secret.current();
      const promoted = latest.version !== run.base && sameJson(latest.data, run.pending);
      if (testedHere !== run.id && !promoted) await step('test', run);
      return secret.promote(run);
    },
    finish: (run) => step('finish', run),
    rollback: (run) => step('rollback', run),
  };
}
