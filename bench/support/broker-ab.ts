/**
 * Two brokers measured in the same run, interleaved (bench/broker.ts with
 * `BENCH_BASELINE_CLI`): a baseline build and the current one, each its own process with
 * the same node flags, the same OpenBao, the same tokens and the same load. Every scenario
 * runs once per broker per round, in the order A B in even and B A in odd turns (ABBA),
 * so a slow stretch of a shared machine falls on both. CPU ms per answered request is
 * the figure to compare: it depends little on what else runs, unlike req/s and latency.
 */
import type { BrokerProcess } from './broker-process.js';
import type { LoadResult } from './load.js';
import { type ProcessUsage, UsageSampler } from './procstat.js';
import { fixed, markdownTable, percent, thousands } from './table.js';

export interface AbBroker {
  /** `baseline` or `current`: the report names them so. */
  readonly name: 'baseline' | 'current';
  readonly label: string;
  readonly process: BrokerProcess;
}

export interface AbScenario {
  readonly id: string;
  readonly label: string;
  readonly load: string;
  readonly run: (broker: BrokerProcess) => Promise<LoadResult>;
}

export interface AbSample {
  readonly scenario: string;
  readonly broker: AbBroker['name'];
  readonly round: number;
  readonly result: LoadResult;
  readonly usage: Readonly<Record<string, ProcessUsage>>;
}

export interface AbOptions {
  readonly brokers: readonly [AbBroker, AbBroker];
  readonly scenarios: readonly AbScenario[];
  readonly rounds: number;
  /** Other processes to account apart (OpenBao, the bench itself). */
  readonly otherPids: Readonly<Record<string, number>>;
  /** Before every measurement, e.g. waiting (bounded) for a quiet machine. */
  readonly before: (pids: Readonly<Record<string, number>>) => Promise<void>;
  readonly log: (message: string) => void;
}

export async function runInterleaved(options: AbOptions): Promise<AbSample[]> {
  const samples: AbSample[] = [];
  let turn = 0;
  for (let round = 0; round < options.rounds; round++) {
    for (const scenario of options.scenarios) {
      const [first, second] = options.brokers;
      const order = turn % 2 === 0 ? [first, second] : [second, first];
      turn++;
      for (const broker of order) {
        const pids = { broker: broker.process.pid, ...options.otherPids };
        await options.before(pids);
        options.log(`A/B round ${round + 1} ${scenario.id} ${broker.name} (${scenario.load})`);
        const sampler = new UsageSampler(pids);
        sampler.start();
        const result = await scenario.run(broker.process);
        samples.push({
          scenario: scenario.id,
          broker: broker.name,
          round,
          result,
          usage: sampler.stop(),
        });
      }
    }
  }
  return samples;
}

/** Broker CPU time per answered request, ms. */
export function cpuMsPerRequest(sample: AbSample): number {
  const cores = sample.usage.broker?.cpuCores ?? 0;
  return sample.result.okRps > 0 ? (cores * 1000) / sample.result.okRps : Number.NaN;
}

function median(values: readonly number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function range(values: readonly number[], digits: number): string {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return 'n/a';
  const low = Math.min(...finite);
  const high = Math.max(...finite);
  return low === high ? fixed(low, digits) : `${fixed(low, digits)}–${fixed(high, digits)}`;
}

export interface AbSummary {
  readonly scenario: string;
  readonly baselineCpu: number;
  readonly currentCpu: number;
  /** current / baseline, of the medians. */
  readonly cpuRatio: number;
}

/** Medians per scenario and broker, with the ratio current / baseline. */
export function summarise(
  scenarios: readonly AbScenario[],
  samples: readonly AbSample[],
): AbSummary[] {
  return scenarios.map((s) => {
    const of = (broker: AbBroker['name']) =>
      samples.filter((x) => x.scenario === s.id && x.broker === broker).map(cpuMsPerRequest);
    const baselineCpu = median(of('baseline'));
    const currentCpu = median(of('current'));
    return { scenario: s.id, baselineCpu, currentCpu, cpuRatio: currentCpu / baselineCpu };
  });
}

/** Markdown: every measurement, then medians and ratios per scenario. */
export function abReport(
  brokers: readonly [AbBroker, AbBroker],
  scenarios: readonly AbScenario[],
  samples: readonly AbSample[],
): string {
  const labelOf = (name: AbBroker['name']) => brokers.find((b) => b.name === name)?.label ?? name;
  const every = markdownTable(
    [
      'round',
      '#',
      'broker',
      'req/s',
      'exact p50 / p99 ms',
      'non-2xx + errors',
      'broker CPU',
      'CPU ms/req broker',
      'OpenBao CPU',
      'other CPU',
    ],
    samples.map((x) => {
      const r = x.result;
      const ok = r.tool === 'loop' ? (r.statuses['2xx'] ?? 0) : (r.statuses['200'] ?? 0);
      const all = Object.values(r.statuses).reduce((a, b) => a + b, 0) + r.errors;
      return [
        String(x.round + 1),
        x.scenario,
        x.broker,
        thousands(r.okRps),
        `${fixed(r.preciseP50, 2)} / ${fixed(r.preciseP99, 2)}`,
        String(all - ok),
        percent(x.usage.broker?.cpuCores ?? 0),
        fixed(cpuMsPerRequest(x), 3),
        percent(x.usage.openbao?.cpuCores ?? 0),
        percent(x.usage.other?.cpuCores ?? 0),
      ];
    }),
  );
  const pick = (id: string, broker: AbBroker['name']) =>
    samples.filter((x) => x.scenario === id && x.broker === broker);
  const summary = markdownTable(
    [
      '#',
      'scenario',
      'load',
      'CPU ms/req baseline (range)',
      'CPU ms/req current (range)',
      'CPU ratio current / baseline',
      'req/s baseline / current',
      'p99 ms baseline / current',
    ],
    scenarios.map((s) => {
      const base = pick(s.id, 'baseline');
      const cur = pick(s.id, 'current');
      const cpuBase = base.map(cpuMsPerRequest);
      const cpuCur = cur.map(cpuMsPerRequest);
      const rps = (xs: readonly AbSample[]) => median(xs.map((x) => x.result.okRps));
      const p99 = (xs: readonly AbSample[]) => median(xs.map((x) => x.result.preciseP99));
      return [
        s.id,
        s.label,
        s.load,
        `${fixed(median(cpuBase), 3)} (${range(cpuBase, 3)})`,
        `${fixed(median(cpuCur), 3)} (${range(cpuCur, 3)})`,
        `${fixed(median(cpuCur) / median(cpuBase), 2)}×`,
        `${thousands(rps(base))} / ${thousands(rps(cur))} (${fixed(rps(cur) / rps(base), 2)}×)`,
        `${fixed(p99(base), 2)} / ${fixed(p99(cur), 2)}`,
      ];
    }),
  );
  return [
    '## Same-run comparison: baseline and current broker, interleaved',
    '',
    `baseline: ${labelOf('baseline')}; current: ${labelOf('current')}. Medians over the rounds; ` +
      'CPU ms/req = broker CPU time per answered request (per job in loop rows).',
    '',
    summary,
    '',
    every,
    '',
  ].join('\n');
}
