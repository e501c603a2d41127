/**
 * Load generators: autocannon for single-request scenarios (its own numbers, plus
 * sub-millisecond percentiles from its per-response times, since its histogram keeps
 * whole milliseconds), and a small bounded loop at fixed concurrency for scenarios that
 * chain requests (login, then read), which autocannon cannot do.
 */
import http from 'node:http';
import autocannon from 'autocannon';

/** Never more samples than this per run (bounds memory whatever the rate). */
const MAX_SAMPLES = 2_000_000;

export interface LoadResult {
  readonly tool: 'autocannon' | 'loop';
  readonly connections: number;
  readonly durationSeconds: number;
  /** Completed requests (or iterations for the loop) per second; autocannon's average. */
  readonly rps: number;
  /** Responses with the expected status (2xx iterations for the loop) per second. */
  readonly okRps: number;
  /** autocannon's own percentiles (whole ms); for the loop, the same as the precise ones. */
  readonly p50: number;
  readonly p99: number;
  /** Percentiles from every recorded response time, in ms. */
  readonly preciseP50: number;
  readonly preciseP99: number;
  readonly completed: number;
  /** Status code → count (for the loop: the status of the failing step, or 0 for a network error). */
  readonly statuses: Readonly<Record<string, number>>;
  readonly errors: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

class Samples {
  readonly #values = new Float64Array(MAX_SAMPLES);
  #count = 0;

  add(ms: number): void {
    if (this.#count < MAX_SAMPLES) this.#values[this.#count++] = ms;
  }

  sorted(): Float64Array {
    return this.#values.slice(0, this.#count).sort();
  }
}

/** The result of one of our own load loops (closed or paced): every latency is exact. */
function loopResult(run: {
  readonly connections: number;
  readonly begin: number;
  readonly samples: Samples;
  readonly completed: number;
  readonly statuses: Record<string, number>;
  readonly errors: number;
}): LoadResult {
  const elapsedSeconds = (performance.now() - run.begin) / 1000;
  const sorted = run.samples.sorted();
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  return {
    tool: 'loop',
    connections: run.connections,
    durationSeconds: elapsedSeconds,
    rps: run.completed / elapsedSeconds,
    okRps: run.completed / elapsedSeconds,
    p50,
    p99,
    preciseP50: p50,
    preciseP99: p99,
    completed: run.completed,
    statuses: run.statuses,
    errors: run.errors,
  };
}

export interface AutocannonScenario {
  readonly url: string;
  readonly method?: 'GET' | 'POST';
  /** Headers per connection: connection i gets headersFor(i) (e.g. one job token each). */
  readonly headersFor: (connection: number) => Record<string, string>;
  readonly body?: string;
  readonly connections: number;
  readonly durationSeconds: number;
  /** Fixed overall request rate (req/s); unbounded when absent. */
  readonly overallRate?: number;
  /** Hard cap on requests, whatever the duration. */
  readonly maxRequests: number;
  /** The status every response should have; only these count in `okRps`. */
  readonly expectStatus: number;
}

export async function runAutocannon(scenario: AutocannonScenario): Promise<LoadResult> {
  const samples = new Samples();
  let nextConnection = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: scenario.url,
        method: scenario.method ?? 'GET',
        ...(scenario.body === undefined ? {} : { body: scenario.body }),
        headers: scenario.headersFor(0),
        connections: scenario.connections,
        duration: scenario.durationSeconds,
        maxOverallRequests: scenario.maxRequests,
        timeout: 10,
        ...(scenario.overallRate === undefined
          ? {}
          : // autocannon's correction assumes a 1 ms interval whatever the rate; keep raw times.
            { overallRate: scenario.overallRate, ignoreCoordinatedOmission: true }),
        setupClient: (client) => {
          client.setHeaders(scenario.headersFor(nextConnection++));
        },
      },
      (error, finished) => (error ? reject(error) : resolve(finished)),
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => samples.add(responseTime));
  });
  const sorted = samples.sorted();
  const statuses: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) {
    statuses[code] = stat.count ?? 0;
  }
  const completed = Object.values(statuses).reduce((sum, n) => sum + n, 0);
  return {
    tool: 'autocannon',
    connections: scenario.connections,
    durationSeconds: result.duration,
    rps: result.requests.average,
    okRps:
      result.duration > 0 ? (statuses[String(scenario.expectStatus)] ?? 0) / result.duration : 0,
    p50: result.latency.p50,
    p99: result.latency.p99,
    preciseP50: percentile(sorted, 50),
    preciseP99: percentile(sorted, 99),
    completed,
    statuses,
    errors: result.errors,
  };
}

/** A failed step in a loop iteration: the HTTP status (0 for a network error). */
export class StepError extends Error {
  override readonly name = 'StepError';
  readonly status: number;
  constructor(status: number) {
    super(`step failed with status ${status}`);
    this.status = status;
  }
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** One HTTP/1.1 request over a keep-alive agent; loopback only. */
export function request(
  agent: http.Agent,
  url: URL,
  opts: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string },
): Promise<HttpAnswer> {
  if (url.hostname !== '127.0.0.1') return Promise.reject(new Error('loopback only'));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: '127.0.0.1',
        port: url.port,
        path: `${url.pathname}${url.search}`,
        method: opts.method,
        headers:
          opts.body === undefined
            ? opts.headers
            : { ...opts.headers, 'Content-Length': String(Buffer.byteLength(opts.body)) },
        timeout: 10000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Throws StepError unless the answer is 2xx; returns it otherwise. */
export function expectOk(answer: HttpAnswer): HttpAnswer {
  if (answer.status < 200 || answer.status >= 300) throw new StepError(answer.status);
  return answer;
}

export interface LoopScenario {
  readonly concurrency: number;
  readonly durationSeconds: number;
  /** Hard cap on iterations across all workers. */
  readonly maxIterations: number;
  /** One job's whole fetch; `worker` and `iteration` pick e.g. a token from a pool. */
  readonly iteration: (agent: http.Agent, worker: number, iteration: number) => Promise<void>;
}

/** `concurrency` workers, each running iterations back to back until time or count runs out. */
export async function runLoop(scenario: LoopScenario): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: scenario.concurrency * 2 });
  const samples = new Samples();
  const statuses: Record<string, number> = {};
  let started = 0;
  let completed = 0;
  let errors = 0;
  const begin = performance.now();
  const deadline = begin + scenario.durationSeconds * 1000;
  const worker = async (index: number): Promise<void> => {
    while (performance.now() < deadline && started < scenario.maxIterations) {
      const iteration = started++;
      const t0 = performance.now();
      try {
        await scenario.iteration(agent, index, iteration);
        samples.add(performance.now() - t0);
        completed += 1;
        statuses['2xx'] = (statuses['2xx'] ?? 0) + 1;
      } catch (error) {
        errors += 1;
        const key = error instanceof StepError ? String(error.status) : 'network';
        statuses[key] = (statuses[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: scenario.concurrency }, (_, i) => worker(i)));
  agent.destroy();
  return loopResult({
    connections: scenario.concurrency,
    begin,
    samples,
    completed,
    statuses,
    errors,
  });
}

export interface PacedScenario {
  /** Requests started per second, evenly spaced (open loop: not waiting for answers). */
  readonly ratePerSecond: number;
  readonly durationSeconds: number;
  /** Requests still unanswered beyond this are not started but counted as errors. */
  readonly maxInFlight: number;
  readonly send: (agent: http.Agent, index: number) => Promise<void>;
}

/**
 * A steady rate: request i starts at t0 + i / rate whatever happened to earlier ones, and
 * its latency counts from that planned start, so queueing is never hidden. (autocannon's
 * `overallRate` instead lets each connection fire its whole second's budget at once.)
 */
export async function runPaced(scenario: PacedScenario): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: scenario.maxInFlight });
  const samples = new Samples();
  const statuses: Record<string, number> = {};
  const total = Math.floor(scenario.ratePerSecond * scenario.durationSeconds);
  const intervalMs = 1000 / scenario.ratePerSecond;
  let inFlight = 0;
  let completed = 0;
  let errors = 0;
  const pending: Promise<void>[] = [];
  const begin = performance.now();
  const fire = (index: number, plannedAt: number) => {
    if (inFlight >= scenario.maxInFlight) {
      errors += 1;
      statuses.dropped = (statuses.dropped ?? 0) + 1;
      return;
    }
    inFlight += 1;
    pending.push(
      scenario.send(agent, index).then(
        () => {
          inFlight -= 1;
          samples.add(performance.now() - plannedAt);
          completed += 1;
          statuses['2xx'] = (statuses['2xx'] ?? 0) + 1;
        },
        (error: unknown) => {
          inFlight -= 1;
          errors += 1;
          const key = error instanceof StepError ? String(error.status) : 'network';
          statuses[key] = (statuses[key] ?? 0) + 1;
        },
      ),
    );
  };
  for (let index = 0; index < total; ) {
    const plannedAt = begin + index * intervalMs;
    const wait = plannedAt - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    // Start everything that is due (timers may wake late).
    while (index < total && begin + index * intervalMs <= performance.now()) {
      fire(index, begin + index * intervalMs);
      index += 1;
    }
  }
  await Promise.all(pending);
  agent.destroy();
  return loopResult({
    connections: scenario.maxInFlight,
    begin,
    samples,
    completed,
    statuses,
    errors,
  });
}
