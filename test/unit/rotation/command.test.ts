/**
 * The command provider's contract (src/rotation/providers/command.ts) with real
 * executables (small /bin/sh scripts): input on stdin or in a 0600 file that is removed
 * afterwards, no broker environment, exit codes, timeouts and the stdout cap.
 */
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandTarget } from '../../../src/policy/types.js';
import {
  RotationInterrupted,
  RotationTestFailed,
  TargetError,
} from '../../../src/rotation/driver.js';
import { runRotation } from '../../../src/rotation/protocol.js';
import {
  type CommandInput,
  createCommandDriver,
  runCommand,
} from '../../../src/rotation/providers/command.js';
import { KvSecret } from '../../../src/rotation/providers/kv.js';
import { createRotationStateStore } from '../../../src/rotation/state.js';
import { MemoryKv } from '../../support/memory-kv.js';

let dir: string;

async function script(name: string, body: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

function target(
  steps: Partial<CommandTarget['steps']>,
  extra: Partial<CommandTarget> = {},
): CommandTarget {
  return {
    kind: 'command',
    steps: { set: ['/bin/true'], test: ['/bin/true'], ...steps },
    input: 'stdin',
    timeoutSeconds: 10,
    env: {},
    ...extra,
  };
}

const input = (step: CommandInput['step']): CommandInput => ({
  rotation: 'robot',
  step,
  runId: 'run-1',
  pending: { username: 'robot', password: 'pending-value' },
  current: { username: 'robot', password: 'current-value' },
  previous: { username: 'robot', password: 'current-value' },
});

/** Whether a process runs; a zombie waiting for its reaper counts as dead. */
async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const line = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return !/^\d+ \(.*\) Z /.test(line);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-command-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('command provider contract', () => {
  it('passes the input on stdin and only PATH, LANG, the declared env and ZSB_ROTATION*', async () => {
    process.env.ZSB_TEST_BROKER_SECRET = 'must-not-reach-the-command';
    try {
      const out = path.join(dir, 'seen');
      const set = await script(
        'set',
        `cat > ${out}.stdin; env | sort > ${out}.env; echo "$@" > ${out}.argv`,
      );
      await runCommand(
        target({ set: [set, 'one', 'two'] }, { env: { REGISTRY: 'r.example' } }),
        input('set'),
      );
      expect(JSON.parse(await readFile(`${out}.stdin`, 'utf8'))).toEqual(input('set'));
      const names = (await readFile(`${out}.env`, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => l.split('=')[0])
        // sh itself adds PWD (and SHLVL, _ on some shells).
        .filter((n) => !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(n ?? ''));
      expect(names).toEqual(['LANG', 'PATH', 'REGISTRY', 'ZSB_ROTATION', 'ZSB_ROTATION_STEP']);
      expect(await readFile(`${out}.argv`, 'utf8')).toBe('one two\n');
    } finally {
      delete process.env.ZSB_TEST_BROKER_SECRET;
    }
  });

  it('with input: file, writes a 0600 file in a private directory and removes it afterwards', async () => {
    const out = path.join(dir, 'file-seen');
    const set = await script(
      'set-file',
      `stat -c %a "$ZSB_ROTATION_INPUT" > ${out}.mode; stat -c %a "$(dirname "$ZSB_ROTATION_INPUT")" > ${out}.dirmode; cat "$ZSB_ROTATION_INPUT" > ${out}.json; echo "$ZSB_ROTATION_INPUT" > ${out}.path; cat > ${out}.stdin`,
    );
    await runCommand(target({ set: [set] }, { input: 'file' }), input('set'));
    expect((await readFile(`${out}.mode`, 'utf8')).trim()).toBe('600');
    expect((await readFile(`${out}.dirmode`, 'utf8')).trim()).toBe('700');
    expect(JSON.parse(await readFile(`${out}.json`, 'utf8'))).toEqual(input('set'));
    expect(await readFile(`${out}.stdin`, 'utf8')).toBe('');
    const used = (await readFile(`${out}.path`, 'utf8')).trim();
    await expect(stat(path.dirname(used))).rejects.toThrow(/ENOENT/);
  });

  it('exit 1 from test means the value does not work; other exits are failures to retry', async () => {
    const one = await script('exit1', 'exit 1');
    const seventyFive = await script('exit75', 'exit 75');
    const three = await script('exit3', 'echo "the value is pending-value" >&2; exit 3');
    await expect(runCommand(target({ test: [one] }), input('test'))).rejects.toBeInstanceOf(
      RotationTestFailed,
    );
    const set = runCommand(target({ set: [one] }), input('set'));
    await expect(set).rejects.toBeInstanceOf(TargetError);
    await expect(set).rejects.toThrow('the set command failed (exit 1)');
    await expect(runCommand(target({ set: [seventyFive] }), input('set'))).rejects.toThrow(
      'the set command failed temporarily (exit 75)',
    );
    // What the command prints on stderr never reaches the error.
    const failed = runCommand(target({ finish: [three] }), input('finish'));
    await expect(failed).rejects.toThrow(/^the finish command failed \(exit 3\)$/);
  });

  it('kills a command (and what it started) at its timeout', async () => {
    const pidFile = path.join(dir, 'timeout-child.pid');
    // The child lets go of the pipes, so only a kill of the whole group can reach it.
    const slow = await script(
      'slow',
      `sh -c 'echo $$ > ${pidFile}; exec sleep 30' </dev/null >/dev/null 2>&1 & sleep 30`,
    );
    const started = Date.now();
    await expect(
      runCommand(target({ set: [slow] }, { timeoutSeconds: 1 }), input('set')),
    ).rejects.toThrow('the set command timed out after 1 s');
    expect(Date.now() - started).toBeLessThan(5000);
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    expect(pid).toBeGreaterThan(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(await alive(pid)).toBe(false);
  });

  it('refuses more than 64 KiB on stdout and a missing executable', async () => {
    const loud = await script('loud', 'head -c 70000 /dev/zero');
    await expect(runCommand(target({ create: [loud] }), input('create'))).rejects.toThrow(
      'the create command printed more than 65536 bytes',
    );
    await expect(
      runCommand(target({ set: [path.join(dir, 'missing')] }), input('set')),
    ).rejects.toThrow('the set command cannot run (ENOENT)');
  });
});

/** Resolves once `file` exists: the script got as far as writing it. */
async function written(file: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (
      await stat(file).then(
        () => true,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${file} was never written`);
}

describe('command provider at shutdown', () => {
  it('sends a running step SIGTERM and calls its outcome unknown, even when it exits 0', async () => {
    const started = path.join(dir, 'term-started');
    const marker = path.join(dir, 'term-seen');
    // `sleep & wait`: the shell runs its trap as soon as the signal arrives.
    const polite = await script(
      'polite',
      `cat > /dev/null; trap 'echo term > ${marker}; exit 0' TERM; touch ${started}; sleep 30 & wait`,
    );
    const controller = new AbortController();
    const running = runCommand(target({ set: [polite] }), input('set'), {
      signal: controller.signal,
    });
    await written(started);
    const at = Date.now();
    controller.abort();
    await expect(running).rejects.toBeInstanceOf(RotationInterrupted);
    expect(Date.now() - at).toBeLessThan(3000);
    expect((await readFile(marker, 'utf8')).trim()).toBe('term');
  });

  it('kills a step that ignores SIGTERM after the grace, and starts none after shutdown', async () => {
    const pidFile = path.join(dir, 'stubborn.pid');
    const stubborn = await script(
      'stubborn',
      `cat > /dev/null; trap '' TERM; echo $$ > ${pidFile}; sleep 30`,
    );
    const controller = new AbortController();
    const running = runCommand(target({ set: [stubborn] }), input('set'), {
      signal: controller.signal,
      graceMs: 300,
    });
    await written(pidFile);
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    controller.abort();
    await expect(running).rejects.toThrow('the set command was stopped: shutting down');
    await new Promise((r) => setTimeout(r, 100));
    expect(await alive(pid)).toBe(false);

    const never = path.join(dir, 'never-ran');
    const late = await script('late', `touch ${never}`);
    await expect(
      runCommand(target({ set: [late] }), input('set'), { signal: controller.signal }),
    ).rejects.toBeInstanceOf(RotationInterrupted);
    await expect(stat(never)).rejects.toThrow(/ENOENT/);
  });

  it('a set stopped by shutdown leaves the run recorded, and the next holder runs set again', async () => {
    const log = path.join(dir, 'shutdown-steps.log');
    const started = path.join(dir, 'set-started');
    // The first set hangs until it is stopped; later ones return at once.
    const step = await script(
      'shutdown-step',
      `cat > /dev/null; echo "$ZSB_ROTATION_STEP" >> ${log}
if [ "$ZSB_ROTATION_STEP" = set ] && [ ! -e ${started} ]; then touch ${started}; sleep 30 & wait; fi`,
    );
    const kv = new MemoryKv();
    kv.put('secret', 'robot', { username: 'robot', password: 'first-password' });
    const store = createRotationStateStore(kv, { mount: 'secret', prefix: 'zsb' });
    const driverFor = (signal?: AbortSignal) =>
      createCommandDriver(
        kv,
        new KvSecret(kv, { mount: 'secret', path: 'robot' }),
        target({ set: [step], test: [step] }),
        {
          rotation: 'robot',
          generate: { key: 'password', kind: 'password', length: 20 },
          ...(signal ? { shutdown: { signal, graceMs: 300 } } : {}),
        },
      );
    const silent = { info: () => {}, warn: () => {}, error: () => {} };
    const common = { store, lockTtlMs: 120_000, force: true, isDue: () => true, logger: silent };
    const controller = new AbortController();
    const first = runRotation('robot', driverFor(controller.signal), {
      ...common,
      instanceId: 'terminating',
      signal: controller.signal,
    });
    await written(started);
    controller.abort();
    expect(await first).toEqual({ outcome: 'stopped' });
    const { record } = await store.read('robot');
    expect(record.holder).toBeUndefined();
    expect(record.run?.step).toBe('created');
    expect(record.lastOutcome).toBeUndefined();
    expect(kv.latest('secret', 'robot')?.version).toBe(1);

    const second = await runRotation('robot', driverFor(), { ...common, instanceId: 'next' });
    expect(second).toMatchObject({ outcome: 'rotated', resumed: true });
    expect((await readFile(log, 'utf8')).split('\n')).toEqual(['set', 'set', 'test', '']);
    expect(kv.latest('secret', 'robot')?.data.password).toBe(record.run?.pending.password);
  });
});

describe('command driver', () => {
  it('a run resumed after its test runs test again before it promotes', async () => {
    const log = path.join(dir, 'steps.log');
    const step = await script('step', `echo "$ZSB_ROTATION_STEP" >> ${log}; cat > /dev/null`);
    const kv = new MemoryKv();
    kv.put('secret', 'robot', { username: 'robot', password: 'first-password' });
    const secret = new KvSecret(kv, { mount: 'secret', path: 'robot' });
    const commands = target({ set: [step], test: [step] });
    const options = {
      rotation: 'robot',
      generate: { key: 'password', kind: 'password' as const, length: 20 },
    };
    const first = createCommandDriver(kv, secret, commands, options);
    const created = await first.create();
    const run = { id: 'run-1', step: 'tested' as const, startedAt: '', ...created };
    await first.set(run);
    await first.test(run);
    // Another process resumes the recorded run at `tested` (the first one crashed).
    const resumed = createCommandDriver(kv, secret, commands, options);
    expect(await resumed.promote(run)).toBe(2);
    expect((await readFile(log, 'utf8')).split('\n')).toEqual(['set', 'test', 'test', '']);
    // Promoted already: a repeated promote neither tests again nor writes twice.
    const again = createCommandDriver(kv, secret, commands, options);
    expect(await again.promote(run)).toBe(2);
    expect((await readFile(log, 'utf8')).split('\n')).toHaveLength(4);
    expect(kv.latest('secret', 'robot')?.data.password).toBe(created.pending.password);
  });

  it('a resumed run whose value the target no longer accepts is not promoted', async () => {
    const refuse = await script('refuse', 'cat > /dev/null; exit 1');
    const kv = new MemoryKv();
    kv.put('secret', 'robot', { username: 'robot', password: 'first-password' });
    const secret = new KvSecret(kv, { mount: 'secret', path: 'robot' });
    const driver = createCommandDriver(kv, secret, target({ test: [refuse] }), {
      rotation: 'robot',
      generate: { key: 'password', kind: 'password', length: 20 },
    });
    const run = { id: 'run-2', step: 'tested' as const, startedAt: '', ...(await driver.create()) };
    await expect(driver.promote(run)).rejects.toBeInstanceOf(RotationTestFailed);
    expect(kv.latest('secret', 'robot')?.version).toBe(1);
  });

  it('a create command makes the value: its JSON fields merged over the current value', async () => {
    const create = await script(
      'create',
      'cat > /dev/null; echo \'{"username":"robot-b","password":"made-by-create"}\'',
    );
    const garbage = await script('garbage', 'cat > /dev/null; echo "not json"');
    const kv = new MemoryKv();
    kv.put('secret', 'robot', { username: 'robot-a', password: 'first', registry: 'r.example' });
    const secret = new KvSecret(kv, { mount: 'secret', path: 'robot' });
    const driver = createCommandDriver(kv, secret, target({ create: [create] }), {
      rotation: 'robot',
    });
    expect(await driver.create()).toEqual({
      base: 1,
      pending: { username: 'robot-b', password: 'made-by-create', registry: 'r.example' },
    });
    const broken = createCommandDriver(kv, secret, target({ create: [garbage] }), {
      rotation: 'robot',
    });
    await expect(broken.create()).rejects.toThrow('the create command did not print a JSON object');
  });
});
