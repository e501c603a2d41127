/**
 * Benchmark: what a rotation costs per provider (issue #17), in-process through the
 * rotation service as `zsb serve` runs it, against real servers started here: an OpenBao
 * dev server, a Keystone 30.0.0 (`npm run setup:credentials`) with Keystone's default
 * bcrypt cost (12 rounds, as in production) and Debian's docker-registry.
 *
 * Baseline in the same run: a generated KV value (the protocol's own writes, no target).
 * Then an OpenStack application credential (grace 0: create, token test, promote, delete
 * the previous one) and a registry robot through the command provider
 * (test/credentials/commands/htpasswd-robot.mjs). Also the cost of one Keystone password
 * login, which every application-credential run pays once.
 *
 *   npx tsx bench/rotation-providers.ts [rotations per provider, default 7]
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { startDevOpenBao } from '../src/dev/openbao-dev-server.js';
import { createOpenBaoClient } from '../src/openbao/client.js';
import { formatProblem, parsePolicyFiles } from '../src/policy/load.js';
import { createRotationService } from '../src/rotation/service.js';
import { createProjectUser, passwordToken, startKeystone } from '../test/support/keystone.js';
import { startRegistry } from '../test/support/registry.js';

const RUNS = Number(process.argv[2] ?? 7);
const SCRIPT = path.resolve(import.meta.dirname, '../test/credentials/commands/htpasswd-robot.mjs');

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}
const ms = (v: number) => `${v.toFixed(0)} ms`;

async function main(): Promise<void> {
  const bao = await startDevOpenBao();
  const keystone = await startKeystone({ passwordHashRounds: 12 });
  const registryPassword = randomBytes(12).toString('hex');
  const registry = await startRegistry('robot-bench', registryPassword);
  try {
    const client = createOpenBaoClient({
      addresses: [bao.address],
      timeoutMs: 10000,
      maxConnections: 4,
      token: () => bao.rootToken,
    });
    const user = await createProjectUser(keystone, { user: 'bench-robot', project: 'bench' });
    const logins: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const started = performance.now();
      await passwordToken(keystone.authUrl, {
        username: user.name,
        password: user.password,
        projectName: user.projectName,
      });
      logins.push(performance.now() - started);
    }
    await client.kvWrite('secret', 'bench/kv', { apiKey: 'first' });
    await client.kvWrite('secret', 'bench/cloud', { region_name: keystone.region });
    await client.kvWrite('secret', 'bench/rotator', {
      auth_url: keystone.authUrl,
      username: user.name,
      password: user.password,
      project_name: user.projectName,
    });
    await client.kvWrite('secret', 'bench/robot', {
      username: 'robot-bench',
      password: registryPassword,
    });
    const policy = [
      'secrets:',
      '  kv: { kv: { mount: secret, path: bench/kv } }',
      '  cloud: { kv: { mount: secret, path: bench/cloud } }',
      '  rotator: { kv: { mount: secret, path: bench/rotator } }',
      '  robot: { kv: { mount: secret, path: bench/robot } }',
      'rotations:',
      '  - { secret: kv, every: 1d, generate: { key: apiKey, kind: token } }',
      '  - secret: cloud',
      '    every: 1d',
      '    target: { applicationCredential: { rotator: rotator, grace: 0 } }',
      '  - secret: robot',
      '    every: 1d',
      '    generate: { key: password, kind: password }',
      '    target:',
      '      command:',
      `        set: [${SCRIPT}, set]`,
      `        test: [${SCRIPT}, test]`,
      `        env: { HTPASSWD_FILE: ${registry.htpasswdFile}, REGISTRY_URL: "${registry.url}" }`,
      '',
    ].join('\n');
    const parsed = parsePolicyFiles([{ name: 'bench.yaml', text: policy }], {
      maxTtlSeconds: 3600,
    });
    if (!parsed.ok) throw new Error(parsed.problems.map(formatProblem).join('\n'));
    const set = parsed.set;
    const quiet = { info() {}, warn() {}, error() {} };
    const service = createRotationService({
      openbao: client,
      stateMount: 'secret',
      statePrefix: 'zsb-bench',
      policies: () => set,
      lockTtlSeconds: 60,
      attempts: 1,
      logger: quiet,
    });
    const results = new Map<string, number[]>();
    // Interleaved, so a change in the machine's load affects every provider alike.
    for (let i = 0; i < RUNS; i++) {
      for (const name of ['kv', 'cloud', 'robot']) {
        const started = performance.now();
        const outcome = await service.rotate(name, { force: true });
        const took = performance.now() - started;
        if (outcome.outcome !== 'rotated') throw new Error(`${name}: ${JSON.stringify(outcome)}`);
        results.set(name, [...(results.get(name) ?? []), took]);
      }
    }
    const median = (name: string) =>
      quantile(
        [...(results.get(name) ?? [])].sort((a, b) => a - b),
        0.5,
      );
    const base = median('kv');
    const rows = [
      ['Keystone set-up (keystone-manage ×4)', ms(keystone.timings.setupMs), ''],
      ['Keystone start (gunicorn until GET /v3)', ms(keystone.timings.startMs), ''],
      [
        'password login, bcrypt 12 (median)',
        ms(
          quantile(
            [...logins].sort((a, b) => a - b),
            0.5,
          ),
        ),
        '',
      ],
      ['registry start', ms(registry.startMs), ''],
      ...[
        ['generated KV value (baseline)', 'kv'],
        ['application credential, grace 0', 'cloud'],
        ['registry robot, command provider', 'robot'],
      ].map(([label = '', name = '']) => {
        const sorted = [...(results.get(name) ?? [])].sort((a, b) => a - b);
        return [
          `${label}: median / max of ${RUNS}`,
          `${ms(median(name))} / ${ms(sorted[sorted.length - 1] ?? Number.NaN)}`,
          `${(median(name) / base).toFixed(1)}×`,
        ];
      }),
    ];
    process.stdout.write('| measure | result | ratio to the KV baseline |\n|---|---|---|\n');
    for (const [a, b, c] of rows) process.stdout.write(`| ${a} | ${b} | ${c} |\n`);
  } finally {
    await registry.stop();
    await keystone.stop();
    await bao.stop();
  }
}

await main();
