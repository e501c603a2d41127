/**
 * Benchmark: memory with 100,000 leases in the ledger (issue #8, item 5).
 *
 * Builds as the broker makes them: per build one orphan build token, recorded in the
 * build's ledger (OpenBao KV v2, `secret/zsb/builds/by-issuer/<issuer hash>/<uuid>`), and under it the build's
 * leases: child tokens, which OpenBao revokes with their parent exactly like database
 * leases issued with the build token. 1,000 builds × 100 leases = 100,000 leases, all real
 * in OpenBao. Then the broker (compiled, as a child process) revokes every build through
 * `POST /v1/revoke` with each build's own job token, while its RSS is sampled.
 *
 *   npx tsx bench/ledger.ts [builds] [leases per build]
 *   BENCH_BROKER_NODE_ARGS="…"  node flags for the broker (default: the image's heap caps)
 *
 * Needs `npm run build` (the broker runs from dist/).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDevOpenBao } from '../src/dev/openbao-dev-server.js';
import { DEFAULT_ZUUL_TOKEN, ZuulIssuer } from '../src/dev/zuul-issuer.js';
import { issuerSegment } from '../src/leases/ledger.js';
import { startBrokerProcess, writeBenchPolicies } from './support/broker-process.js';
import { findPid, rssBytes } from './support/procstat.js';

const BUILDS = Number(process.argv[2] ?? 1000);
const LEASES_PER_BUILD = Number(process.argv[3] ?? 100);
const CONCURRENCY = 16;
const IMAGE_NODE_ARGS = '--max-old-space-size=96 --max-semi-space-size=2';
const CLI = path.resolve('dist/cli/index.js');

const mb = (bytes: number | undefined) =>
  bytes === undefined ? '?' : `${(bytes / 1024 / 1024).toFixed(0)} MB`;

async function bao(
  address: string,
  token: string,
  method: string,
  apiPath: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${address}/v1/${apiPath}`, {
    method,
    headers: { 'X-Vault-Token': token, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status >= 300)
    throw new Error(`${method} ${apiPath}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

/** Runs `task(i)` for i in [0, n) with bounded concurrency. */
async function pool(n: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error('run `npm run build` first (the broker runs from dist/)');
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'zsb-ledger-'));
  const openbao = await startDevOpenBao();
  const baoPid = findPid(`-dev-listen-address=127.0.0.1:${new URL(openbao.address).port}`);
  const issuer = await ZuulIssuer.start({ modulusLength: 2048 });
  const root = openbao.rootToken;
  try {
    await bao(openbao.address, root, 'PUT', 'sys/policies/acl/zsb-ledger-broker', {
      policy: [
        'path "secret/data/zsb/builds/*" { capabilities = ["create", "read", "update"] }',
        'path "auth/token/revoke-accessor" { capabilities = ["update"] }',
        'path "auth/token/lookup-self" { capabilities = ["read"] }',
        'path "secret/data/bench/*" { capabilities = ["read"] }',
      ].join('\n'),
    });
    await bao(openbao.address, root, 'PUT', 'sys/policies/acl/zsb-ledger-build', {
      policy: 'path "auth/token/create" { capabilities = ["update"] }',
    });
    const brokerToken = (
      (
        await bao(openbao.address, root, 'POST', 'auth/token/create-orphan', {
          policies: ['zsb-ledger-broker'],
          no_default_policy: true,
          ttl: '2h',
        })
      ).auth as { client_token: string }
    ).client_token;
    const baoRssBefore = baoPid === undefined ? undefined : rssBytes(baoPid);

    // 1. Builds, their leases and their ledgers, all real in OpenBao.
    const builds = Array.from({ length: BUILDS }, () => randomBytes(16).toString('hex'));
    const childAccessors: string[] = [];
    let started = performance.now();
    await pool(BUILDS, async (b) => {
      const created = (
        await bao(openbao.address, root, 'POST', 'auth/token/create-orphan', {
          policies: ['zsb-ledger-build'],
          no_default_policy: true,
          ttl: '2h',
        })
      ).auth as { client_token: string; accessor: string };
      for (let l = 0; l < LEASES_PER_BUILD; l++) {
        const child = (
          await bao(openbao.address, created.client_token, 'POST', 'auth/token/create', {
            // A child may carry only its parent's policies, and like it no `default`.
            policies: ['zsb-ledger-build'],
            no_default_policy: true,
            ttl: '1h',
          })
        ).auth as { accessor: string };
        if (l === 0) childAccessors.push(child.accessor);
      }
      const ledgerPath = `zsb/builds/by-issuer/${issuerSegment(issuer.issuer)}/${builds[b]}`;
      await bao(openbao.address, root, 'POST', `secret/data/${ledgerPath}`, {
        options: { cas: 0 },
        data: {
          entries: [
            {
              kind: 'build-token',
              accessor: created.accessor,
              expiresAt: new Date(Date.now() + 7200_000).toISOString(),
            },
          ],
        },
      });
    });
    const createSeconds = (performance.now() - started) / 1000;
    const baoRssLoaded = baoPid === undefined ? undefined : rssBytes(baoPid);

    // 2. The broker, compiled, with the image's heap caps unless told otherwise.
    const policiesDir = path.join(workDir, 'policies');
    await writeBenchPolicies(policiesDir);
    const nodeArgs = (process.env.BENCH_BROKER_NODE_ARGS ?? IMAGE_NODE_ARGS)
      .split(/\s+/)
      .filter(Boolean);
    const broker = await startBrokerProcess({
      name: 'ledger-broker',
      workDir,
      policiesDir,
      openbaoAddress: openbao.address,
      brokerToken,
      issuer: issuer.issuer,
      audience: DEFAULT_ZUUL_TOKEN.audience,
      logLevel: 'warn',
      nodeArgs,
      compiledCli: CLI,
    });
    try {
      const brokerIdle = rssBytes(broker.pid);
      let brokerPeak = brokerIdle ?? 0;
      const sampler = setInterval(() => {
        brokerPeak = Math.max(brokerPeak, rssBytes(broker.pid) ?? 0);
      }, 100);

      // 3. Every build revoked by its own job, through the broker.
      let revoked = 0;
      let failed = 0;
      started = performance.now();
      await pool(BUILDS, async (b) => {
        const token = issuer.mint({
          'build-uuid': builds[b] ?? '',
          aud: DEFAULT_ZUUL_TOKEN.audience,
        });
        const res = await fetch(`${broker.url}/v1/revoke`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        });
        const body = (await res.json()) as { revoked?: number };
        if (res.status === 200 && body.revoked === 1) revoked++;
        else failed++;
      });
      const revokeSeconds = (performance.now() - started) / 1000;
      clearInterval(sampler);
      const brokerAfter = rssBytes(broker.pid);

      // 4. The leases really are gone: a child token of each sampled build no longer exists.
      let stillThere = 0;
      for (const accessor of childAccessors.slice(0, 50)) {
        const res = await fetch(`${openbao.address}/v1/auth/token/lookup-accessor`, {
          method: 'POST',
          headers: { 'X-Vault-Token': root, 'content-type': 'application/json' },
          body: JSON.stringify({ accessor }),
        });
        await res.arrayBuffer();
        if (res.status === 200) stillThere++;
      }

      const leases = BUILDS * LEASES_PER_BUILD;
      const lines = [
        `## ledger with ${leases.toLocaleString('en')} leases`,
        '',
        `machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model.trim() ?? '?'}; Node ${process.version}; OpenBao ${openbao.version}; broker ${path.relative(process.cwd(), CLI)} with \`${nodeArgs.join(' ')}\``,
        '',
        '| what | measured |',
        '|---|---|',
        `| builds × leases (child tokens of the build token) | ${BUILDS.toLocaleString('en')} × ${LEASES_PER_BUILD} = ${leases.toLocaleString('en')}, created in ${createSeconds.toFixed(1)} s (${Math.round(leases / createSeconds).toLocaleString('en')}/s) |`,
        `| OpenBao RSS before / with the leases | ${mb(baoRssBefore)} / ${mb(baoRssLoaded)} |`,
        `| broker RSS idle / peak while revoking / after | ${mb(brokerIdle)} / ${mb(brokerPeak)} / ${mb(brokerAfter)} |`,
        `| revocations through the broker (c=${CONCURRENCY}) | ${revoked.toLocaleString('en')} builds answered 200 with 1 build token revoked, ${failed} otherwise, in ${revokeSeconds.toFixed(1)} s (${Math.round(BUILDS / revokeSeconds)} builds/s, ${Math.round(leases / revokeSeconds).toLocaleString('en')} leases/s) |`,
        `| sampled leases still valid afterwards (lookup by accessor) | ${stillThere} of ${Math.min(50, childAccessors.length)} |`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
      if (failed > 0 || stillThere > 0) process.exitCode = 1;
    } finally {
      await broker.stop();
    }
  } finally {
    await issuer.close();
    await openbao.stop();
    await rm(workDir, { recursive: true, force: true });
  }
}

await main();
