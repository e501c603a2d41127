/** `zsb dev` (the embedded playground) and `zsb dev token` (mint a job token from it). */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { type DevOpenBaoCluster, isDevCluster } from '../dev/openbao-cluster.js';
import { PROJECT_ROOT } from '../dev/openbao-dev-server.js';
import {
  DEV_STATE_DIR,
  type PlaygroundState,
  SIGNING_KEY_FILE,
  STATE_FILE,
  startPlayground,
} from '../dev/playground.js';
import { ZuulIssuer } from '../dev/zuul-issuer.js';
import { createLogger } from '../main.js';

/** Claims a user may set with `key=value`; `project` and `secret` go into `sub`. */
const SETTABLE = new Set([
  'tenant',
  'project',
  'secret',
  'job-name',
  'pipeline',
  'playbook',
  'build-uuid',
  'aud',
  'ttl',
]);

function parseClaimArgs(args: readonly string[]): {
  claims: Record<string, string>;
  project?: string;
  secret?: string;
  ttl?: number;
} {
  const claims: Record<string, string> = {};
  let project: string | undefined;
  let secret: string | undefined;
  let ttl: number | undefined;
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const key = eq > 0 ? arg.slice(0, eq) : '';
    const value = arg.slice(eq + 1);
    if (!SETTABLE.has(key)) {
      throw new Error(
        `claim argument '${arg}' must be KEY=VALUE with KEY one of ${[...SETTABLE].join(', ')}`,
      );
    }
    if (key === 'project') project = value;
    else if (key === 'secret') secret = value;
    else if (key === 'ttl') {
      ttl = Number(value);
      if (!Number.isInteger(ttl) || ttl <= 0)
        throw new Error('ttl must be a positive number of seconds');
    } else claims[key] = value;
  }
  return {
    claims,
    ...(project === undefined ? {} : { project }),
    ...(secret === undefined ? {} : { secret }),
    ...(ttl === undefined ? {} : { ttl }),
  };
}

function printExample(state: PlaygroundState, rootToken: string): void {
  const lines = [
    '',
    'zsb dev is running: a real OpenBao dev server, a Zuul-like token issuer and the broker.',
    '',
    `  broker   ${state.brokerUrl}`,
    `  issuer   ${state.issuer}  (audience ${state.audience})`,
    `  OpenBao  ${state.openbaoAddress}  (root token ${rootToken}; in memory, gone on exit)`,
    '',
    'In another terminal, in this directory, fetch a secret as a Zuul job would:',
    '',
    '  TOKEN=$(npx zsb dev token)',
    `  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\`,
    `       -d '{"secrets": ["compliance-clouds"]}' ${state.brokerUrl}/v1/fetch`,
    '',
    'See what the token may fetch, and be refused outside the policy:',
    '',
    `  curl -s -H "Authorization: Bearer $TOKEN" ${state.brokerUrl}/v1/whoami`,
    `  curl -s -H "Authorization: Bearer $(npx zsb dev token pipeline=check)" ${state.brokerUrl}/v1/secrets/compliance-clouds`,
    '',
    'Press Ctrl-C to stop.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

function printClusterNodes(bao: DevOpenBaoCluster): void {
  const lines = [
    'OpenBao runs as a 3-node raft cluster (static seal, performance_multiplier = 1); the',
    'broker is given every address (docs/high-availability.md). Kill a node to watch the',
    'broker fail over; `curl -s <broker>/readyz` names the active, lagging and lost nodes:',
    '',
    ...bao.cluster.nodes.map((n) => `  ${n.id}  ${n.address}  pid ${n.pid() ?? '-'}`),
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

export function registerDevCommands(program: Command): void {
  const dev = program
    .command('dev')
    .description(
      'run the embedded playground: OpenBao dev server, Zuul-like issuer, example secrets, broker',
    )
    .option('--host <host>', 'broker listen address', '127.0.0.1')
    .option('--port <port>', 'broker port (0 = any free port)', '8080')
    .option('--policies <dir>', 'policy directory', path.join(PROJECT_ROOT, 'policies'))
    .option('--log-level <level>', 'broker log level', 'info')
    .option('--ha', 'OpenBao as a 3-node raft cluster (static seal) instead of one dev server')
    .action(
      async (options: {
        host: string;
        port: string;
        policies: string;
        logLevel: string;
        ha?: boolean;
      }) => {
        const port = Number(options.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535)
          throw new Error('--port must be 0-65535');
        const logger = createLogger(options.logLevel, process.stderr);
        const playground = await startPlayground({
          host: options.host,
          port,
          policies: options.policies,
          stateDir: path.resolve(DEV_STATE_DIR),
          logger,
          ...(options.ha ? { ha: true } : {}),
        });
        printExample(playground.state, playground.rootToken);
        if (isDevCluster(playground.openbao)) printClusterNodes(playground.openbao);
        const stop = () => {
          void playground.stop().then(() => process.exit(0));
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      },
    );

  dev
    .command('token')
    .argument(
      '[claims...]',
      'claims to set, e.g. pipeline=check job-name=deploy project=github.com/org/repo ttl=600',
    )
    .description('mint a job token from the running playground (prints the JWT)')
    .action(async (args: string[]) => {
      const dir = path.resolve(DEV_STATE_DIR);
      let state: PlaygroundState;
      try {
        state = JSON.parse(await readFile(path.join(dir, STATE_FILE), 'utf8')) as PlaygroundState;
      } catch {
        throw new Error(
          `no running playground found in ${dir}: start \`npx zsb dev\` in this directory first`,
        );
      }
      const issuer = await ZuulIssuer.fromSigningKeyFile(path.join(dir, SIGNING_KEY_FILE));
      const parsed = parseClaimArgs(args);
      const token = issuer.mint(
        { aud: state.audience, ...parsed.claims },
        {
          ...(parsed.project === undefined ? {} : { project: parsed.project }),
          ...(parsed.secret === undefined ? {} : { secretName: parsed.secret }),
          ...(parsed.ttl === undefined ? {} : { ttlSeconds: parsed.ttl }),
        },
      );
      process.stdout.write(`${token}\n`);
    });
}
