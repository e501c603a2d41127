/**
 * `zsb import-zuul-secrets`: moves a project's Zuul secrets (encrypted in its repo) into
 * OpenBao KV v2, never overwriting unless asked, then prints a policies/ stub granting
 * each to its project. Values are never printed, also not with --dry-run.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfigFile } from '../config/load.js';
import { createOpenBaoClient } from '../openbao/client.js';
import { OpenBaoError } from '../openbao/errors.js';
import {
  decryptSecret,
  ImportError,
  loadProjectKey,
  readZuulSecrets,
  type ZuulSecret,
  zuulConfigFiles,
} from '../zuul/encrypted-secrets.js';

interface ImportOptions {
  key: string;
  passphraseFile?: string;
  tenant: string;
  project: string;
  mount: string;
  path: string;
  dryRun?: boolean;
  overwrite?: boolean;
  config?: string;
}

/** Policy names allow lowercase letters, digits, `.`, `_`, `-` (docs/policy.md). */
function policyName(zuulName: string): string {
  const name = zuulName
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '');
  return name.slice(0, 128) || 'secret';
}

function targetPath(template: string, options: ImportOptions, name: string): string {
  return template
    .replaceAll('{tenant}', options.tenant)
    .replaceAll('{project}', options.project)
    .replaceAll('{name}', name);
}

function openBaoClient(options: ImportOptions) {
  const address = process.env.BAO_ADDR ?? process.env.VAULT_ADDR;
  const token = process.env.BAO_TOKEN ?? process.env.VAULT_TOKEN;
  if (address && token) {
    return createOpenBaoClient({
      addresses: [address],
      timeoutMs: 10000,
      maxConnections: 4,
      token: () => token,
    });
  }
  const file = options.config ?? process.env.ZSB_CONFIG;
  if (!file)
    throw new Error(
      'writing to OpenBao needs BAO_ADDR and BAO_TOKEN, or --config with a token file',
    );
  const config = loadConfigFile(file);
  if (config.openbao.auth.method !== 'token')
    throw new Error('--config must use openbao.auth.method: token here');
  const fileToken = readFileSync(config.openbao.auth.tokenFile, 'utf8').trim();
  const addresses =
    config.openbao.addresses ?? (config.openbao.address ? [config.openbao.address] : []);
  return createOpenBaoClient({
    addresses,
    timeoutMs: config.openbao.timeoutMs,
    maxConnections: 4,
    token: () => fileToken,
  });
}

function stub(options: ImportOptions, imported: readonly { name: string; path: string }[]): string {
  const lines = [
    '# policies/ stub from zsb import-zuul-secrets: review the match before use.',
    'secrets:',
  ];
  for (const s of imported)
    lines.push(
      `  ${policyName(s.name)}:`,
      `    kv: { mount: ${options.mount}, path: "${s.path}" }`,
    );
  lines.push(
    'grants:',
    `  - name: ${policyName(`${options.project.split('/').pop() ?? 'project'}-imported`)}`,
    '    match:',
    `      tenant: ${options.tenant}`,
    `      project: ${options.project}`,
    '      pipeline: [post, promote, periodic]   # pin post-merge pipelines (docs/policy.md)',
    `    allow: [${imported.map((s) => policyName(s.name)).join(', ')}]`,
  );
  return `${lines.join('\n')}\n`;
}

export function registerImportCommand(program: Command): void {
  program
    .command('import-zuul-secrets')
    .description("decrypt a project's Zuul secrets and write each to OpenBao KV v2")
    .argument(
      '<paths...>',
      'Zuul config files, or project directories (zuul.yaml, zuul.d/, .zuul.yaml, .zuul.d/)',
    )
    .requiredOption(
      '--key <file>',
      "the project's private key (PEM) or zuul-admin export-keys JSON",
    )
    .option(
      '--passphrase-file <file>',
      'passphrase of the key (the keystore password for export-keys JSON)',
    )
    .requiredOption('--tenant <tenant>', 'Zuul tenant')
    .requiredOption('--project <project>', 'canonical project name, e.g. github.com/org/repo')
    .option('--mount <mount>', 'KV v2 mount', 'secret')
    .option(
      '--path <template>',
      'KV path template ({tenant}, {project}, {name})',
      'zuul/{tenant}/{project}/{name}',
    )
    .option('--dry-run', 'list names and target paths; write nothing')
    .option('--overwrite', 'replace entries that already exist')
    .option(
      '--config <file>',
      'broker configuration (OpenBao address and token file) when BAO_ADDR/BAO_TOKEN are not set',
    )
    .action(async (paths: string[], options: ImportOptions) => {
      const passphrase = options.passphraseFile
        ? readFileSync(options.passphraseFile, 'utf8').replace(/\r?\n$/, '')
        : undefined;
      const key = loadProjectKey(options.key, passphrase, options.project);
      const secrets: ZuulSecret[] = paths.flatMap((p) =>
        zuulConfigFiles(p).flatMap(readZuulSecrets),
      );
      if (secrets.length === 0)
        throw new ImportError('no secrets found in the given Zuul configuration');
      const client = options.dryRun ? undefined : openBaoClient(options);
      const imported: { name: string; path: string }[] = [];
      let failures = 0;
      for (const secret of secrets) {
        const target = targetPath(options.path, options, secret.name);
        let data: Record<string, unknown>;
        try {
          data = decryptSecret(key, secret);
        } catch (error) {
          failures++;
          process.stderr.write(
            `error: ${error instanceof ImportError ? error.message : `secret '${secret.name}': cannot decrypt`}; nothing written for it\n`,
          );
          continue;
        }
        if (client === undefined) {
          process.stdout.write(
            `would write secret '${secret.name}' (${Object.keys(data).length} fields) to ${options.mount}/${target}\n`,
          );
          imported.push({ name: secret.name, path: target });
          continue;
        }
        try {
          await client.kvWrite(options.mount, target, data, options.overwrite ? {} : { cas: 0 });
          process.stdout.write(
            `wrote secret '${secret.name}' (${Object.keys(data).length} fields) to ${options.mount}/${target}\n`,
          );
          imported.push({ name: secret.name, path: target });
        } catch (error) {
          failures++;
          const exists = error instanceof OpenBaoError && error.kind === 'cas_mismatch';
          process.stderr.write(
            `error: secret '${secret.name}': ${exists ? `${options.mount}/${target} exists (use --overwrite)` : error instanceof Error ? error.message : 'write failed'}\n`,
          );
        }
      }
      if (imported.length > 0) process.stdout.write(`\n${stub(options, imported)}`);
      if (failures > 0) process.exitCode = 1;
    });
}
