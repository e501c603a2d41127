#!/usr/bin/env node
/**
 * `zsb`: the command line. Each command lives in its own file; this one wires them to
 * commander and owns the exit codes (0 success, 1 a check or operation failed, 2 usage).
 */
import { Command, CommanderError } from 'commander';
import { registerBackupCommands } from './backup.js';
import { registerDevCommands } from './dev.js';
import { registerImportCommand } from './import-zuul-secrets.js';
import { registerPolicyCommands } from './policy.js';
import { registerRotationCommands } from './rotate.js';
import { registerServeCommand } from './serve.js';

export class CliFailure extends Error {
  override readonly name = 'CliFailure';
}

const program = new Command('zsb')
  .description('Zuul secrets broker: Zuul job tokens in, OpenBao secrets out, under policies')
  .exitOverride()
  .showHelpAfterError();

registerServeCommand(program);
registerDevCommands(program);
registerPolicyCommands(program);
registerImportCommand(program);
registerRotationCommands(program);
registerBackupCommands(program);

try {
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
