/**
 * Resident memory and CPU time of other processes, read from /proc (Linux), and a
 * sampler that records the largest RSS seen while a scenario runs.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS =
  Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** Resident set size in bytes (`VmRSS`), or undefined when the process is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** User + system CPU time in milliseconds, or undefined when the process is gone. */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** The pid of the process whose command line contains `needle` (e.g. a listen address). */
export function findPid(needle: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(needle)) return Number(entry);
    } catch {
      // The process ended while we looked.
    }
  }
  return undefined;
}

/** CPU time all processes of the machine used since boot (busy, not idle or iowait), ms. */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  const busy = [user, nice, system, irq, softirq, steal].reduce<number>((a, b) => a + (b ?? 0), 0);
  return (busy * 1000) / CLOCK_TICKS;
}

/** Cores busy with processes other than `pids` over `ms` (e.g. other jobs on a shared machine). */
export async function otherCores(pids: readonly number[], ms: number): Promise<number> {
  const ours = () => pids.reduce((sum, pid) => sum + (cpuMs(pid) ?? 0), 0);
  const machine0 = machineBusyMs();
  const ours0 = ours();
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const elapsed = performance.now() - t0;
  return Math.max(0, machineBusyMs() - machine0 - (ours() - ours0)) / elapsed;
}

export interface ProcessUsage {
  /** Largest RSS sampled, bytes. */
  readonly maxRss: number;
  /** RSS at the end, bytes. */
  readonly endRss: number;
  /** CPU time used during the window as a share of one core (1 = 100 %). */
  readonly cpuCores: number;
}

/** Samples the RSS of some processes every `intervalMs` between start and stop. */
export class UsageSampler {
  readonly #pids: Readonly<Record<string, number>>;
  readonly #maxRss = new Map<string, number>();
  readonly #cpuStart = new Map<string, number>();
  #startedAt = 0;
  #machineStart = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(pids: Readonly<Record<string, number>>) {
    this.#pids = pids;
  }

  start(intervalMs = 200): void {
    this.#startedAt = performance.now();
    this.#machineStart = machineBusyMs();
    for (const [name, pid] of Object.entries(this.#pids)) {
      this.#cpuStart.set(name, cpuMs(pid) ?? 0);
    }
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  /** Usage per process name, plus `other`: CPU used by every other process of the machine. */
  stop(): Record<string, ProcessUsage> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#sample();
    const elapsedMs = performance.now() - this.#startedAt;
    const out: Record<string, ProcessUsage> = {};
    let ours = 0;
    for (const [name, pid] of Object.entries(this.#pids)) {
      const cpu = (cpuMs(pid) ?? 0) - (this.#cpuStart.get(name) ?? 0);
      ours += cpu;
      out[name] = {
        maxRss: this.#maxRss.get(name) ?? 0,
        endRss: rssBytes(pid) ?? 0,
        cpuCores: elapsedMs > 0 ? cpu / elapsedMs : 0,
      };
    }
    const other = Math.max(0, machineBusyMs() - this.#machineStart - ours);
    out.other = { maxRss: 0, endRss: 0, cpuCores: elapsedMs > 0 ? other / elapsedMs : 0 };
    return out;
  }

  #sample(): void {
    for (const [name, pid] of Object.entries(this.#pids)) {
      const rss = rssBytes(pid);
      if (rss !== undefined && rss > (this.#maxRss.get(name) ?? 0)) this.#maxRss.set(name, rss);
    }
  }
}
