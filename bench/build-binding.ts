/**
 * Benchmark: what the build binding (ADR 0014) costs a fetch, and how many requests it
 * sends zuul-web, under the broker benchmark's load (bench/broker.ts): 200 req/s paced
 * with 64 job tokens (one build each), and a closed loop of 32 connections.
 *
 * One run starts `bao server -dev` (.venv-bao), a Zuul-like issuer with a 4096-bit key, a
 * loopback stand-in for zuul-web's build API (it answers every build as running, after
 * BENCH_ZUUL_WEB_DELAY_MS, and counts requests) and two brokers as child processes, the
 * same configuration but one with `buildBinding` on. The two are measured in turns
 * (plain, bound, bound, plain) so that drift on a shared machine hits both alike; the
 * table reports p50/p99 of each and the difference. Results: BENCHMARKS.md.
 *
 *   npx tsx bench/build-binding.ts
 *   BENCH_SECONDS=N            length of a phase (default 10)
 *   BENCH_ZUUL_WEB_DELAY_MS=N  zuul-web's answer time for a build record (default 5: a DB query)
 *   BENCH_BROKER_CLI=F         run a compiled CLI (e.g. dist/cli/index.js) instead of tsx
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type http from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startDevOpenBao } from '../src/dev/openbao-dev-server.js';
import { DEFAULT_ZUUL_TOKEN, ZuulIssuer } from '../src/dev/zuul-issuer.js';
import {
  BENCH_GRANT_MATCH,
  prepareBenchBrokers,
  startBrokerProcess,
} from './support/broker-process.js';
import { expectOk, type LoadResult, request, runAutocannon, runPaced } from './support/load.js';
import { BENCH_SECRET_NAMES } from './support/openbao-setup.js';
import { fixed, markdownTable } from './support/table.js';

const PHASE_SECONDS = Number(process.env.BENCH_SECONDS ?? 10) || 10;
const ZUUL_WEB_DELAY_MS = Number(process.env.BENCH_ZUUL_WEB_DELAY_MS ?? 5);
const RATE = 200;
const CONNECTIONS = 32;
const TOKEN_POOL = 64;
const ROUNDS = 2;
const AUDIENCE = DEFAULT_ZUUL_TOKEN.audience;
const ONE = JSON.stringify({ secrets: [BENCH_SECRET_NAMES[0]] });
const SHORT_PROJECT = BENCH_GRANT_MATCH.project.split('/').slice(1).join('/');

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** zuul-web's build API as the binding reads it: every build is running. */
async function startZuulWeb(): Promise<{
  url: string;
  counts: { builds: number; projects: number };
  close(): Promise<void>;
}> {
  const counts = { builds: 0, projects: 0 };
  const server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url === `/api/tenant/${DEFAULT_ZUUL_TOKEN.tenant}/projects`) {
      counts.projects++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify([
          {
            name: SHORT_PROJECT,
            canonical_name: BENCH_GRANT_MATCH.project,
            connection_name: 'github',
            type: 'untrusted',
          },
        ]),
      );
      return;
    }
    const match = /^\/api\/tenant\/[^/]+\/build\/([0-9a-f]{32})$/.exec(url);
    if (match === null) {
      res.writeHead(404).end();
      return;
    }
    counts.builds++;
    const body = JSON.stringify({
      uuid: match[1],
      job_name: DEFAULT_ZUUL_TOKEN.jobName,
      pipeline: DEFAULT_ZUUL_TOKEN.pipeline,
      result: null,
      start_time: '2026-12-01T13:00:00',
      end_time: null,
      ref: { project: SHORT_PROJECT, branch: 'main', ref: 'refs/heads/main', change: null },
      buildset: { uuid: 'b'.repeat(32) },
    });
    setTimeout(
      () => res.writeHead(200, { 'content-type': 'application/json' }).end(body),
      ZUUL_WEB_DELAY_MS,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

interface Measured {
  readonly broker: string;
  readonly load: string;
  readonly result: LoadResult;
  readonly zuulWebPerSecond: number;
}

async function main(): Promise<void> {
  const cleanup: Array<() => Promise<unknown>> = [];
  try {
    const workDir = await mkdtemp(path.join(os.tmpdir(), 'zsb-bench-binding-'));
    cleanup.push(() => rm(workDir, { recursive: true, force: true }));
    const bao = await startDevOpenBao();
    cleanup.push(() => bao.stop());
    const issuer = await ZuulIssuer.start({ modulusLength: 4096 });
    cleanup.push(() => issuer.close());
    const zuulWeb = await startZuulWeb();
    cleanup.push(() => zuulWeb.close());
    const { shared } = await prepareBenchBrokers(workDir, bao, issuer, AUDIENCE);
    const common = {
      ...shared,
      openbaoAddress: bao.address,
      logLevel: 'warn',
      compiledCli: process.env.BENCH_BROKER_CLI,
    } as const;
    const plain = await startBrokerProcess({ ...common, name: 'plain' });
    cleanup.push(() => plain.stop());
    const bound = await startBrokerProcess({
      ...common,
      name: 'bound',
      issuerExtra: { buildBinding: { webUrl: zuulWeb.url } },
    });
    cleanup.push(() => bound.stop());

    const tokens = Array.from({ length: TOKEN_POOL }, () => issuer.mint({ aud: AUDIENCE }));
    const headers = (i: number) => ({
      authorization: `Bearer ${tokens[i % TOKEN_POOL] ?? ''}`,
      'content-type': 'application/json',
    });
    // Warm both (key set, verified-token cache, and the binding's cache of each build).
    for (const b of [plain, bound]) {
      for (let i = 0; i < TOKEN_POOL; i++) {
        const res = await fetch(`${b.url}/v1/fetch`, {
          method: 'POST',
          headers: headers(i),
          body: ONE,
        });
        if (res.status !== 200) throw new Error(`${b.url}: warm-up fetch answered ${res.status}`);
        await res.arrayBuffer();
      }
    }

    const rows: Measured[] = [];
    const phase = async (name: string, load: string, run: () => Promise<LoadResult>) => {
      const before = zuulWeb.counts.builds;
      const started = performance.now();
      log(`${name}: ${load}`);
      const result = await run();
      const seconds = (performance.now() - started) / 1000;
      rows.push({
        broker: name,
        load,
        result,
        zuulWebPerSecond: (zuulWeb.counts.builds - before) / seconds,
      });
    };
    for (let round = 0; round < ROUNDS; round++) {
      // ABBA: a machine whose load drifts during the run favours neither broker.
      const order = [
        ['plain', plain],
        ['bound', bound],
      ] as const;
      for (const [name, b] of round % 2 === 0 ? order : [...order].reverse()) {
        await phase(name, `paced ${RATE}/s, ${PHASE_SECONDS} s`, () =>
          runPaced({
            ratePerSecond: RATE,
            durationSeconds: PHASE_SECONDS,
            maxInFlight: 256,
            send: async (agent: http.Agent, i: number) => {
              expectOk(
                await request(agent, new URL(`${b.url}/v1/fetch`), {
                  method: 'POST',
                  headers: headers(i),
                  body: ONE,
                }),
              );
            },
          }),
        );
        await phase(name, `autocannon c=${CONNECTIONS}, ${PHASE_SECONDS} s`, () =>
          runAutocannon({
            url: `${b.url}/v1/fetch`,
            method: 'POST',
            headersFor: headers,
            body: ONE,
            connections: CONNECTIONS,
            durationSeconds: PHASE_SECONDS,
            maxRequests: 2_000_000,
            expectStatus: 200,
          }),
        );
      }
    }
    report(rows, zuulWeb.counts.projects);
  } finally {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  }
}

function report(rows: readonly Measured[], projectLists: number): void {
  const loads = [...new Set(rows.map((r) => r.load))];
  const table: string[][] = [];
  for (const load of loads) {
    const of = (broker: string) => rows.filter((r) => r.load === load && r.broker === broker);
    const avg = (xs: readonly Measured[], f: (r: Measured) => number) =>
      xs.reduce((sum, r) => sum + f(r), 0) / Math.max(1, xs.length);
    const p = of('plain');
    const b = of('bound');
    const p50 = [avg(p, (r) => r.result.preciseP50), avg(b, (r) => r.result.preciseP50)] as const;
    const p99 = [avg(p, (r) => r.result.preciseP99), avg(b, (r) => r.result.preciseP99)] as const;
    const rps = [avg(p, (r) => r.result.okRps), avg(b, (r) => r.result.okRps)] as const;
    const errors = [...p, ...b].reduce((sum, r) => sum + r.result.errors, 0);
    table.push([
      load,
      `${fixed(p50[0], 2)} / ${fixed(p50[1], 2)} (+${fixed(p50[1] - p50[0], 2)})`,
      `${fixed(p99[0], 2)} / ${fixed(p99[1], 2)} (+${fixed(p99[1] - p99[0], 2)})`,
      `${fixed(rps[0], 0)} / ${fixed(rps[1], 0)} (${fixed(rps[1] / rps[0], 2)}×)`,
      fixed(
        avg(b, (r) => r.zuulWebPerSecond),
        1,
      ),
      String(errors),
    ]);
  }
  process.stdout.write(
    `${markdownTable(
      [
        'load',
        'p50 ms plain / bound',
        'p99 ms plain / bound',
        'ok req/s plain / bound',
        'zuul-web build req/s (bound)',
        'errors',
      ],
      table,
    )}\n\n${ROUNDS} rounds per broker, ABBA order; ${TOKEN_POOL} builds; zuul-web answers after ${ZUUL_WEB_DELAY_MS} ms; project list read ${projectLists} times.\n`,
  );
}

await main();
