/**
 * Summarises a V8 `.cpuprofile` (from `BENCH_CPU_PROF_DIR=… npx tsx bench/broker.ts`): the
 * top functions by self time, self time per package or source file, and the top by
 * inclusive time. Percentages are of the busy time: samples outside `(idle)` (start-up
 * and shutdown are included; keep the load phases long against them).
 *
 *   npx tsx bench/support/profile-top.ts FILE.cpuprofile [rows]
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const CallFrame = z.object({
  functionName: z.string(),
  url: z.string(),
  lineNumber: z.number(),
});
const Profile = z.object({
  nodes: z.array(
    z.object({ id: z.number(), callFrame: CallFrame, children: z.array(z.number()).optional() }),
  ),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});
type Frame = z.infer<typeof CallFrame>;

/** node_modules package, project source file, or Node internal module. */
export function owner(url: string): string {
  if (url === '') return '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1] !== undefined) return pkg[1];
  const src = url.indexOf('/src/');
  if (src !== -1) return url.slice(src + 1);
  // Node's own copy of undici (fetch, Headers, Response) apart from the npm package.
  if (url.startsWith('node:internal/deps/')) return `node:${url.replace(/^.*\//, '')}`;
  return url.replace(/^.*\//, '');
}

/**
 * Stages of a broker request, recognised by frames on the stack. The specific stages are
 * looked for first, nearest the leaf first, so that a socket write under the OpenBao
 * client counts for the client; only then the generic ones (routing, broker code, the
 * HTTP server), which sit above nearly everything.
 */
const SPECIFIC_STAGES: ReadonlyArray<readonly [string, RegExp]> = [
  ['garbage collection', /^\(garbage collector\)/],
  ['start-up: module loading, tsx', /module_job|translators|hooks:|^\S+ loader:|\btsx:|esbuild/],
  ['token verification (jose, WebCrypto RSA)', /\bjose:|webcrypto|rsaSignVerify|jobPromise/],
  [
    'OpenBao client (transport: undici pool, or node-vault/axios/node http client before)',
    /node-vault|axios|follow-redirects|tv4|_http_client|_http_agent|onSocketNT| undici:|openbao\/transport|transport\.js/,
  ],
  [
    'request body as Web Request (bodyLimit, @hono/node-server)',
    /newRequestFromIncoming|Request\$1 @hono/,
  ],
  [
    'response as Web Response, socket write (@hono/node-server)',
    /responseViaResponseObject|Response\$1 @hono|_Response (node:)?undici/,
  ],
  ['request log (pino)', /\bpino:|@pinojs/],
  ['metrics (prom-client)', /prom-client/],
  ['policy decision, body/claims validation (src/policy, zod)', /src\/policy|\bzod:/],
  ['rate limiter', /rate-limit|lru-cache/],
];
const GENERIC_STAGES: ReadonlyArray<readonly [string, RegExp]> = [
  ['hono routing and middleware', /\bhono:/],
  ['broker code (src/)', /\bsrc\//],
  [
    'HTTP server: parse, socket I/O (node:http)',
    /_http_server|_http_common|_http_outgoing|_http_incoming|node:net|stream_base_commons|writev|parserOn/,
  ],
];
const STAGE_COUNT = SPECIFIC_STAGES.length + GENERIC_STAGES.length + 1;

/** `labels` from the leaf to the root. */
function stageOf(labels: readonly string[]): string {
  for (const stages of [SPECIFIC_STAGES, GENERIC_STAGES]) {
    for (const name of labels) {
      for (const [stage, pattern] of stages) if (pattern.test(name)) return stage;
    }
  }
  return 'other (event loop, promises, native)';
}

function label(frame: Frame): string {
  return `${frame.functionName || '(anonymous)'} ${owner(frame.url)}:${frame.lineNumber + 1}`;
}

function top(map: Map<string, number>, total: number, rows: number): string[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, rows)
    .map(([key, value]) => `${((100 * value) / total).toFixed(1).padStart(6)} %  ${key}`);
}

function add<K>(map: Map<K, number>, key: K, value: number): void {
  map.set(key, (map.get(key) ?? 0) + value);
}

export function summarise(file: string, rows: number): string {
  const profile = Profile.parse(JSON.parse(readFileSync(file, 'utf8')));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const timeAt = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    add(timeAt, id, profile.timeDeltas[i] ?? 0);
  });
  let total = 0;
  const self = new Map<string, number>();
  const byOwner = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const stages = new Map<string, number>();
  for (const [id, micros] of timeAt) {
    const node = nodes.get(id);
    if (node === undefined) continue;
    total += micros;
    add(self, label(node.callFrame), micros);
    if (node.callFrame.functionName !== '(idle)') add(byOwner, owner(node.callFrame.url), micros);
    const seen = new Set<string>();
    const stack: string[] = [];
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = nodes.get(id)?.callFrame;
      if (frame === undefined) break;
      const name = label(frame);
      stack.push(name);
      if (!seen.has(name)) add(inclusive, name, micros);
      seen.add(name);
    }
    if (node.callFrame.functionName !== '(idle)') add(stages, stageOf(stack), micros);
  }
  const busy = total - (self.get('(idle) (native):0') ?? 0);
  self.delete('(idle) (native):0');
  inclusive.delete('(idle) (native):0');
  inclusive.delete('(root) (native):0');
  return [
    `${file}: ${(total / 1e6).toFixed(1)} s of samples, ${(busy / 1e6).toFixed(1)} s busy`,
    '--- busy time by stage of a request',
    ...top(stages, busy, STAGE_COUNT),
    '--- self time',
    ...top(self, busy, rows),
    '--- self time by package / file',
    ...top(byOwner, busy, rows),
    '--- inclusive time',
    ...top(inclusive, busy, rows * 2),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: npx tsx bench/support/profile-top.ts FILE.cpuprofile [rows]\n');
    process.exit(2);
  }
  process.stdout.write(`${summarise(file, Number(process.argv[3] ?? 25))}\n`);
}
