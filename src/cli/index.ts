#!/usr/bin/env node
/**
 * `zsb`: the command line. Each command lives in its own file; this one wires them to
 * commander and owns the exit codes (0 success, 1 a check or operation failed, 2 usage).
 */
import { Command, CommanderError } from 'commander';

export class CliFailure extends Error {
  override readonly name = 'CliFailure';
}

type Register = (program: Command) => void;

/**
 * Each top-level command and the module that registers it. Only the module of the command
 * named on the command line is loaded: `zsb serve` then never loads the policy report's
 * HTML, the backup tooling, the playground or the import, which a serving broker keeps in
 * memory for nothing (BENCHMARKS.md, "Memory under load with Node's defaults"). Help, and a
 * word that names no command, load them all, so that help lists every command and
 * commander can suggest the closest one.
 */
const COMMANDS: Readonly<Record<string, () => Promise<Register>>> = {
  serve: async () => (await import('./serve.js')).registerServeCommand,
  dev: async () => (await import('./dev.js')).registerDevCommands,
  policy: async () => (await import('./policy.js')).registerPolicyCommands,
  'import-zuul-secrets': async () =>
    (await import('./import-zuul-secrets.js')).registerImportCommand,
  rotate: async () => (await import('./rotate.js')).registerRotationCommands,
  rotation: async () => (await import('./rotate.js')).registerRotationCommands,
  backup: async () => (await import('./backup.js')).registerBackupCommands,
};

/** The registrations the command line needs, in the order help lists them. */
async function registrationsFor(args: readonly string[]): Promise<Register[]> {
  const word = args.find((arg) => !arg.startsWith('-'));
  const only = word === undefined ? undefined : COMMANDS[word];
  if (only) return [await only()];
  const all = await Promise.all(Object.values(COMMANDS).map((load) => load()));
  // `rotate` and `rotation` share one module, which registers both.
  return [...new Set(all)];
}

const program = new Command('zsb')
  .description('Zuul secrets broker: Zuul job tokens in, OpenBao secrets out, under policies')
  .exitOverride()
  .showHelpAfterError();

try {
  for (const register of await registrationsFor(process.argv.slice(2))) register(program);
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version are successes; anything else commander reports is a usage error.
    process.exit(
      error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? 0 : 2,
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`zsb: ${message}\n`);
  process.exit(1);
}
