/**
 * `zsb rotate NAME | --due` and `zsb rotation status`: rotations on demand, as the broker
 * would run them, with the broker's configuration and credential.
 *
 * ZSB_ROTATION_PAUSE_AT=<boundary> makes `zsb rotate` stop at that step boundary and wait
 * to be killed: the crash tests use it to SIGKILL a real rotation between two steps.
 */
import type { Command } from 'commander';
import { openAuditLog } from '../audit/log.js';
import { loadBrokerPolicies } from '../broker/policy-store.js';
import { loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger } from '../main.js';
import { connectOpenBao } from '../openbao/connect.js';
import {
  ROTATION_BOUNDARIES,
  type RotationBoundary,
  type RotationOutcome,
} from '../rotation/protocol.js';
import {
  auditedOutcome,
  createRotationService,
  type RotationService,
  rotationSettings,
} from '../rotation/service.js';

/** --config FILE, else ZSB_CONFIG; `zsb backup` reads its configuration the same way. */
export function configFile(options: { config?: string }): string {
  const file = options.config ?? process.env.ZSB_CONFIG;
  if (!file) throw new Error('no configuration: pass --config FILE or set ZSB_CONFIG');
  return file;
}

/** Builds the rotation service the way `zsb serve` does. */
export async function rotationServiceFor(config: Config): Promise<{
  service: RotationService;
  stop: () => Promise<void>;
}> {
  // The broker's logger (with its redaction), on stderr: stdout carries the command's answer.
  const logger = createLogger(config.log.level, process.stderr);
  // Policies first: a broken policy set is reported without touching OpenBao.
  const policies = await loadBrokerPolicies(config.policies, config.maxTtlSeconds);
  const { openbao, credential } = await connectOpenBao(config.openbao, logger);
  // stdout carries the command's answer: a stdout audit sink writes to stderr here.
  const audit = await openAuditLog(config.audit, process.stderr);
  const service = createRotationService({
    openbao,
    ...rotationSettings(config),
    policies: () => policies.current(),
    logger,
    onOutcome: async (rotation, outcome) => {
      const event = auditedOutcome(rotation, outcome, 'manual');
      if (event) await audit.log.rotated(event);
    },
  });
  return {
    service,
    stop: async () => {
      credential.stop();
      await audit.log.close();
    },
  };
}

export function describeOutcome(name: string, outcome: RotationOutcome): string {
  switch (outcome.outcome) {
    case 'rotated':
      return `${name}: rotated (version ${String(outcome.version)}${outcome.resumed ? ', resumed an interrupted run' : ''}${outcome.finishAfter ? `; the previous value is retired after ${outcome.finishAfter}` : ''})`;
    case 'finished':
      return `${name}: finished (version ${String(outcome.version)}; the previous value is retired)`;
    case 'waiting':
      return `${name}: waiting: the previous value is retired after ${outcome.until}; no new rotation starts before`;
    case 'not-due':
      return `${name}: not due`;
    case 'busy':
      return `${name}: another instance holds the lock`;
    case 'aborted':
      return `${name}: aborted: ${outcome.reason}`;
    case 'failed':
      return `${name}: failed at ${outcome.step}: ${outcome.reason}`;
    case 'lost-lock':
      return `${name}: stopped: another instance took over the lock`;
    case 'stopped':
      return `${name}: stopped for shutdown`;
  }
}

/**
 * `ZSB_ROTATION_PAUSE_AT=<boundary>` stops there until the process is killed;
 * `<boundary>:<ms>` pauses that long and goes on (a holder that comes back late).
 */
function pauseHook(): ((b: RotationBoundary) => Promise<void>) | undefined {
  const setting = process.env.ZSB_ROTATION_PAUSE_AT;
  if (!setting) return undefined;
  const [at = '', ms] = setting.split(':');
  const pauseMs = ms === undefined ? undefined : Number(ms);
  if (
    !ROTATION_BOUNDARIES.includes(at as RotationBoundary) ||
    (pauseMs !== undefined && !(Number.isInteger(pauseMs) && pauseMs >= 0))
  ) {
    throw new Error(
      `ZSB_ROTATION_PAUSE_AT must be one of ${ROTATION_BOUNDARIES.join(', ')}, optionally :<ms>`,
    );
  }
  return async (boundary) => {
    if (boundary !== at) return;
    process.stderr.write(`zsb: paused at ${boundary}\n`);
    if (pauseMs === undefined)
      await new Promise(() => {}); // until killed
    else await new Promise((resolve) => setTimeout(resolve, pauseMs));
  };
}

export function registerRotationCommands(program: Command): void {
  program
    .command('rotate')
    .description('rotate NAME now, or every due rotation with --due')
    .argument('[name]', 'rotation name (the secret name, or static-role:<mount>/<role>)')
    .option('--due', 'rotate everything that is due (exit 0 also when nothing was due)')
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (name: string | undefined, options: { due?: boolean; config?: string }) => {
      if ((name === undefined) === !options.due) {
        throw new Error('give either a rotation name or --due');
      }
      const config = loadConfigFile(configFile(options));
      const { service, stop } = await rotationServiceFor(config);
      const onBoundary = pauseHook();
      try {
        const outcomes =
          name !== undefined
            ? new Map([
                [
                  name,
                  await service.rotate(name, {
                    force: true,
                    ...(onBoundary ? { onBoundary } : {}),
                  }),
                ],
              ])
            : await service.rotateDue(onBoundary ? { onBoundary } : {});
        let ok = true;
        for (const [n, outcome] of outcomes) {
          process.stdout.write(`${describeOutcome(n, outcome)}\n`);
          const fine =
            outcome.outcome === 'rotated' ||
            outcome.outcome === 'finished' ||
            outcome.outcome === 'not-due' ||
            (options.due === true && (outcome.outcome === 'busy' || outcome.outcome === 'waiting'));
          ok &&= fine;
        }
        if (outcomes.size === 0) process.stdout.write('no rotations configured\n');
        if (!ok) process.exitCode = 1;
      } finally {
        await stop();
      }
    });

  program
    .command('rotation')
    .description('rotation state')
    .command('status')
    .description('last success, next run, current step and last error of every rotation')
    .option('--json', 'machine-readable output')
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (options: { json?: boolean; config?: string }) => {
      const config = loadConfigFile(configFile(options));
      const { service, stop } = await rotationServiceFor(config);
      try {
        const status = await service.status();
        if (options.json) {
          process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
          return;
        }
        for (const s of status) {
          const lines = [
            `${s.name}  (${s.schedule})`,
            `  last success: ${s.lastSuccess ?? 'never'}${s.lastOutcome && s.lastOutcome !== 'rotated' ? `  (last run ${s.lastOutcome})` : ''}`,
            `  next run:     ${s.nextRun}`,
            ...(s.step
              ? [
                  `  in progress:  step ${s.step} done${s.lockedBy ? `, locked by ${s.lockedBy}` : ''}${s.finishAfter ? `; the previous value is retired after ${s.finishAfter}` : ''}`,
                ]
              : []),
            ...(s.lastError
              ? [
                  `  last error:   ${s.lastError.at} at ${s.lastError.step}: ${s.lastError.message} (${s.failures} failed in a row)`,
                ]
              : []),
          ];
          process.stdout.write(`${lines.join('\n')}\n`);
        }
        if (status.length === 0) process.stdout.write('no rotations configured\n');
      } finally {
        await stop();
      }
    });
}
