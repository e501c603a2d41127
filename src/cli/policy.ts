/** `zsb policy check`: validates a policy directory, printing `file:line:col: message`. */
import path from 'node:path';
import type { Command } from 'commander';
import { formatProblem, loadPolicyDir } from '../policy/load.js';
import { loadPolicyTests, runPolicyTests } from '../policy/test-runner.js';

/** The global maximum TTL when no configuration is given (api.md default: 1 h). */
const DEFAULT_MAX_TTL_SECONDS = 3600;

function policyDir(dir: string | undefined): string {
  return path.resolve(dir ?? process.env.ZSB_POLICIES ?? './policies');
}

export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('check and test policy files');

  policy
    .command('check')
    .argument('[dir]', 'policy directory (default ./policies)')
    .description('validate every policy file; exit 1 with file:line:col: message per problem')
    .action(async (dir: string | undefined) => {
      const root = policyDir(dir);
      const result = await loadPolicyDir(root, { maxTtlSeconds: DEFAULT_MAX_TTL_SECONDS });
      if (!result.ok) {
        for (const p of result.problems) process.stderr.write(`${formatProblem(p)}\n`);
        process.exitCode = 1;
        return;
      }
      const set = result.set;
      process.stdout.write(
        `${root}: ok (${set.secrets.size} secrets, ${set.grants.length} grants, ${set.rotations.length} rotations in ${set.files.length} files)\n`,
      );
    });

  policy
    .command('test')
    .argument('[dir]', 'policy directory (default ./policies); cases in DIR/tests/')
    .description('run the policy test cases; exit 1 on any mismatch')
    .action(async (dir: string | undefined) => {
      const root = policyDir(dir);
      const result = await loadPolicyDir(root, { maxTtlSeconds: DEFAULT_MAX_TTL_SECONDS });
      if (!result.ok) {
        for (const p of result.problems) process.stderr.write(`${formatProblem(p)}\n`);
        process.exitCode = 1;
        return;
      }
      const cases = await loadPolicyTests(path.join(root, 'tests'));
      if (!cases.ok) {
        for (const p of cases.problems) process.stderr.write(`${formatProblem(p)}\n`);
        process.exitCode = 1;
        return;
      }
      const outcomes = runPolicyTests(result.set, cases.cases);
      let failed = 0;
      for (const o of outcomes) {
        if (o.passed) process.stdout.write(`ok    ${o.name}\n`);
        else {
          failed++;
          process.stdout.write(`FAIL  ${o.name}: ${o.message}\n`);
        }
      }
      process.stdout.write(`${outcomes.length - failed} passed, ${failed} failed\n`);
      if (failed > 0 || outcomes.length === 0) process.exitCode = 1;
    });
}
