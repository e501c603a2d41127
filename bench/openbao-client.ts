/**
 * Benchmark: the broker's OpenBao client alone, CPU per call, against a real `bao server
 * -dev` (.venv-bao): a baseline build of src/openbao/client.ts and the current one, in the
 * same process, interleaved (A B B A per round pair), with the same server, token and load.
 * A KV v2 read of a ~100-byte entry, as a fetch makes it, by 16 concurrent callers.
 *
 *   npm run build
 *   BENCH_BASELINE_DIST=/work/baseline-7a8feb7/dist npx tsx bench/openbao-client.ts
 *   BENCH_CALLS=N     calls per round (default 4000); BENCH_ROUNDS=N (default 4, even)
 *
 * CPU is this process's (user + system) per call: the client's whole cost, from the call
 * to the parsed entry, kernel writes included. Results: BENCHMARKS.md.
 */
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startDevOpenBao } from '../src/dev/openbao-dev-server.js';
import { fixed, markdownTable, thousands } from './support/table.js';

interface KvClient {
  kvRead(mount: string, path: string): Promise<{ version: number } | null>;
  kvWrite(mount: string, path: string, data: Record<string, unknown>): Promise<unknown>;
}
type Factory = (options: {
  addresses: string[];
  timeoutMs: number;
  maxConnections: number;
  token: () => string;
}) => KvClient;

const CALLS = Number(process.env.BENCH_CALLS ?? 4000);
const ROUNDS = Math.max(2, Math.trunc(Number(process.env.BENCH_ROUNDS ?? 4) / 2) * 2);
const CONCURRENCY = 16;

async function load(dist: string): Promise<Factory> {
  const module: unknown = await import(
    pathToFileURL(path.resolve(dist, 'openbao', 'client.js')).href
  );
  const factory = (module as { createOpenBaoClient?: unknown }).createOpenBaoClient;
  if (typeof factory !== 'function') throw new Error(`no createOpenBaoClient in ${dist}`);
  return factory as Factory;
}

async function round(client: KvClient, kvPath: string) {
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < CALLS) {
        const entry = await client.kvRead('secret', kvPath);
        if (entry === null) throw new Error('bench entry missing');
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  const ms = performance.now() - t0;
  return { cpuUsPerCall: (cpu.user + cpu.system) / CALLS, callsPerSecond: (CALLS * 1000) / ms };
}

async function main(): Promise<void> {
  const baselineDist = process.env.BENCH_BASELINE_DIST;
  if (baselineDist === undefined) throw new Error('set BENCH_BASELINE_DIST (a compiled checkout)');
  const bao = await startDevOpenBao();
  try {
    // The dev server's root token: the client's cost does not depend on OpenBao's policy.
    const token = bao.rootToken;
    const kvPath = 'bench/clouds';
    const options = {
      addresses: [bao.address],
      timeoutMs: 5000,
      maxConnections: 32,
      token: () => token,
    };
    const clients = {
      baseline: (await load(baselineDist))(options),
      current: (await load(path.resolve('dist')))(options),
    };
    await clients.current.kvWrite('secret', kvPath, { clouds: 'x'.repeat(100) });
    // Warm-up: both clients, JIT and connections.
    for (const client of Object.values(clients)) await round(client, kvPath);
    const results: Array<{ round: number; name: string; cpu: number; rate: number }> = [];
    for (let r = 0; r < ROUNDS; r++) {
      const order: Array<keyof typeof clients> =
        r % 2 === 0 ? ['baseline', 'current'] : ['current', 'baseline'];
      for (const name of order) {
        const { cpuUsPerCall, callsPerSecond } = await round(clients[name], kvPath);
        results.push({ round: r + 1, name, cpu: cpuUsPerCall, rate: callsPerSecond });
      }
    }
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      const m = Math.floor(s.length / 2);
      return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
    };
    const of = (name: string, key: 'cpu' | 'rate') =>
      results.filter((x) => x.name === name).map((x) => x[key]);
    const cpuB = median(of('baseline', 'cpu'));
    const cpuC = median(of('current', 'cpu'));
    process.stdout.write(
      [
        '## OpenBao client alone: KV v2 read, same process, interleaved',
        '',
        `baseline ${baselineDist}, current dist/; ${CALLS} calls per round, ${CONCURRENCY} callers; ` +
          `OpenBao ${bao.version}; Node ${process.version}; load average ${os
            .loadavg()
            .map((l) => fixed(l, 2))
            .join(' ')}`,
        '',
        markdownTable(
          ['round', 'client', 'CPU µs/call', 'calls/s'],
          results.map((x) => [String(x.round), x.name, fixed(x.cpu, 1), thousands(x.rate)]),
        ),
        '',
        `median CPU per call: baseline ${fixed(cpuB, 1)} µs, current ${fixed(cpuC, 1)} µs ` +
          `(${fixed(cpuC / cpuB, 2)}×); calls/s ${thousands(median(of('baseline', 'rate')))} / ` +
          `${thousands(median(of('current', 'rate')))}`,
        '',
      ].join('\n'),
    );
  } finally {
    await bao.stop();
  }
}

await main();
process.exit(0);
