/** `zsb serve`: runs the broker from a configuration file. */
import type { Command } from 'commander';
import { loadConfigFile } from '../config/load.js';
import { startBroker } from '../main.js';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the broker (configuration from --config FILE or ZSB_CONFIG)')
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (options: { config?: string }) => {
      const file = options.config ?? process.env.ZSB_CONFIG;
      if (!file) throw new Error('no configuration: pass --config FILE or set ZSB_CONFIG');
      const config = loadConfigFile(file);
      await startBroker(config, { handleSignals: true });
    });
}
