/**
 * The broker against a real OpenBao that misbehaves: a fault proxy sits between them and
 * refuses, stalls, resets, answers errors or garbage. Each fault must give the job the exact
 * status and code of api.md, never an upstream message, and the broker must recover as soon
 * as OpenBao does. Reads are retried a bounded number of times; calls that create something
 * (here: a response-wrapped read, which creates a wrapping token) are sent exactly once.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger, type RunningBroker, startBroker } from '../../src/main.js';
import { createOpenBaoClient } from '../../src/openbao/client.js';
import { LogCapture } from '../support/app.js';
import { tokenBrokerDocument } from '../support/config.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { until } from '../support/http.js';
import { cloudsPolicy } from '../support/kv-broker.js';
import { realOpenBao, uniquePrefix } from '../support/real-openbao.js';
import { startZuulIssuer, type ZuulIssuer } from '../support/zuul.js';

const AUDIENCE = 'https://secrets.example.org';
/** The broker's OpenBao timeout; the stalling fault holds requests well past it. */
const TIMEOUT_MS = 1000;
const bao = realOpenBao();
const prefix = uniquePrefix('faults');
const CLOUDS = { username: 'ci', password: `pw-${prefix}` };
const KV_PATH = `/v1/secret/data/${prefix}/clouds`;
/** An oversize body that would be a valid KV v2 read answer if the broker took it in. */
const KV_SHAPED = { head: '{"data":{"data":{"pad":"', tail: '"},"metadata":{"version":1}}}' };

let dir: string;
let issuer: ZuulIssuer;
let proxy: FaultProxy;
let broker: RunningBroker;
let brokerToken: string;
const logs = new LogCapture();

const POLICY = cloudsPolicy(prefix, 'faults');

interface Answer {
  readonly status: number;
  readonly contentType: string | null;
  readonly retryAfter: string | null;
  readonly text: string;
  readonly body: Record<string, unknown>;
}

async function get(route: string, token?: string): Promise<Answer> {
  const res = await fetch(`${broker.url}${route}`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  const text = await res.text();
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    retryAfter: res.headers.get('retry-after'),
    text,
    body: JSON.parse(text) as Record<string, unknown>,
  };
}

const readSecret = () => get('/v1/secrets/clouds', issuer.mint());
const readWrapped = () => get('/v1/secrets/clouds?wrap=true', issuer.mint());
const readiness = () => get('/readyz');

/** Requests for the secret's KV entry that reached the proxy (health checks etc. excluded). */
function kvReadsSeen(): number {
  return proxy.seen.filter((r) => r.path.startsWith(KV_PATH)).length;
}

/** A problem+json answer with exactly this status and code, and none of OpenBao's words. */
function expectProblem(answer: Answer, status: number, code: string): void {
  expect(answer.status).toBe(status);
  expect(answer.contentType).toContain('application/problem+json');
  expect(answer.body).toMatchObject({ type: 'about:blank', status, code });
  expect(answer.text).not.toContain('fault proxy');
  expect(answer.text).not.toContain(CLOUDS.password);
  expect(answer.text).not.toContain(brokerToken);
  if (status === 503) expect(answer.retryAfter).toMatch(/^\d+$/);
}

async function expectRecovered(): Promise<void> {
  await proxy.setMode({ kind: 'pass' });
  const answer = await readSecret();
  expect(answer.status).toBe(200);
  expect(answer.body).toEqual({ data: CLOUDS, version: 1, lease: null, expiresAt: null });
  const ready = await readiness();
  expect(ready.status).toBe(200);
  expect(ready.body.ready).toBe(true);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-faults-'));
  await bao.admin.kvWrite('secret', `${prefix}/clouds`, CLOUDS);
  await bao.admin.putAclPolicy(
    `zsb-${prefix}`,
    `path "secret/data/${prefix}/*" { capabilities = ["read"] }\npath "auth/token/revoke-accessor" { capabilities = ["update"] }\n`,
  );
  brokerToken = (
    await bao.admin.createToken({ policies: [`zsb-${prefix}`], ttlSeconds: 3600, orphan: true })
  ).token;
  await writeFile(path.join(dir, 'token'), brokerToken, { mode: 0o600 });
  await writeFile(path.join(dir, 'policies.yaml'), POLICY);
  [issuer, proxy] = await Promise.all([startZuulIssuer(), FaultProxy.start(bao.address)]);
  const config = parseConfig({
    ...tokenBrokerDocument({
      issuer: issuer.issuer,
      audience: AUDIENCE,
      openbao: proxy.url,
      tokenFile: path.join(dir, 'token'),
      policies: dir,
      openbaoSettings: { timeoutMs: TIMEOUT_MS },
    }),
    limits: { perIdentity: { rate: 1000, burst: 1000 }, global: { rate: 1000, burst: 1000 } },
  });
  broker = await startBroker(config, { logger: createLogger('info', logs) });
});

afterEach(async () => {
  await proxy.setMode({ kind: 'pass' });
  proxy.resetCount();
});

afterAll(async () => {
  await broker?.close();
  await proxy?.close();
  await issuer?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('OpenBao behind a fault proxy', () => {
  it('serves through the proxy while it passes everything', async () => {
    const answer = await readSecret();
    expect(answer.status).toBe(200);
    expect(answer.body.data).toEqual(CLOUDS);
    expect(kvReadsSeen()).toBe(1);
  });

  it('unreachable OpenBao: 503 unavailable, /readyz failing; both recover', async () => {
    await proxy.setMode({ kind: 'refuse' });
    expectProblem(await readSecret(), 503, 'unavailable');
    const ready = await readiness();
    expect(ready.status).toBe(503);
    expect(ready.body.ready).toBe(false);
    expect(ready.body.checks).toMatchObject({ openbao: { status: 'failing' } });
    expect(JSON.stringify(ready.body)).not.toContain(proxy.url);
    await expectRecovered();
  });

  it('OpenBao slower than the timeout: 504 upstream_timeout, the read not repeated', async () => {
    await proxy.setMode({ kind: 'delay', ms: TIMEOUT_MS * 3 });
    const started = performance.now();
    expectProblem(await readSecret(), 504, 'upstream_timeout');
    // Retries never start once a call has used its timeout: the job waits one timeout.
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS * 2);
    expect(kvReadsSeen()).toBe(1);
    const ready = await readiness();
    expect(ready.status).toBe(503);
    expect(ready.body.checks).toMatchObject({ openbao: { status: 'failing' } });
    await expectRecovered();
  });

  it('a connection reset mid-response: 503 unavailable after the read was tried 3 times', async () => {
    await proxy.setMode({ kind: 'reset', bytes: 10 });
    expectProblem(await readSecret(), 503, 'unavailable');
    expect(kvReadsSeen()).toBe(3);
    await expectRecovered();
  });

  it.each<[number, number, string, number]>([
    // OpenBao's own 500: an error the job cannot fix, and not one a repeat would cure.
    [500, 502, 'upstream_error', 1],
    // A gateway in front of OpenBao, or OpenBao sealed/standby: unavailable, read retried.
    [502, 503, 'unavailable', 3],
    [503, 503, 'unavailable', 3],
    // A gateway's timeout: OpenBao did not answer in time (api.md), the read retried.
    [504, 504, 'upstream_timeout', 3],
    // OpenBao's own rate limit: unavailable with Retry-After, and no extra load from retries.
    [429, 503, 'unavailable', 1],
  ])(
    'OpenBao answering %i: %i %s, the read sent %i time(s); recovers',
    async (upstream, status, code, sent) => {
      await proxy.setMode({ kind: 'status', status: upstream });
      expectProblem(await readSecret(), status, code);
      expect(kvReadsSeen()).toBe(sent);
      await expectRecovered();
    },
  );

  it('a non-JSON 200 (garbage): 502 upstream_error, not repeated; recovers', async () => {
    await proxy.setMode({ kind: 'garbage' });
    expectProblem(await readSecret(), 502, 'upstream_error');
    expect(kvReadsSeen()).toBe(1);
    const ready = await readiness();
    expect(ready.status).toBe(503);
    expect(ready.body.checks).toMatchObject({ openbao: { status: 'failing' } });
    await expectRecovered();
  });

  it('an oversize KV answer (over the 4 MiB default): 502 upstream_error, not repeated; recovers', async () => {
    await proxy.setMode({ kind: 'oversize', bytes: 6 * 1024 * 1024, ...KV_SHAPED });
    expectProblem(await readSecret(), 502, 'upstream_error');
    expect(kvReadsSeen()).toBe(1);
    await expectRecovered();
  });

  it('a transient failure of a read is retried and the job never sees it', async () => {
    await proxy.setMode({ kind: 'status', status: 502, times: 2 });
    const answer = await readSecret();
    expect(answer.status).toBe(200);
    expect(answer.body.data).toEqual(CLOUDS);
    expect(kvReadsSeen()).toBe(3);
  });

  it('a read that creates a wrapping token is sent once, even when a repeat would succeed', async () => {
    await proxy.setMode({ kind: 'status', status: 502, times: 1 });
    expectProblem(await readWrapped(), 503, 'unavailable');
    expect(kvReadsSeen()).toBe(1);

    proxy.resetCount();
    await proxy.setMode({ kind: 'reset', bytes: 10 });
    expectProblem(await readWrapped(), 503, 'unavailable');
    expect(kvReadsSeen()).toBe(1);

    await proxy.setMode({ kind: 'pass' });
    const wrapped = await readWrapped();
    expect(wrapped.status).toBe(200);
    expect(wrapped.body).toMatchObject({ wrapped: { ttl: 60 } });
  });

  it('a redirect from OpenBao is not followed with the broker token', async () => {
    const tokensSeen: string[] = [];
    const elsewhere: Server = createServer((req, res) => {
      tokensSeen.push(String(req.headers['x-vault-token'] ?? ''));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{}}');
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    const address = elsewhere.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      await proxy.setMode({ kind: 'redirect', location: `http://127.0.0.1:${port}${KV_PATH}` });
      expectProblem(await readSecret(), 502, 'upstream_error');
      expect(tokensSeen).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => elsewhere.close(() => resolve()));
    }
    await expectRecovered();
  });

  it('exposes OpenBao call latency by operation and outcome, and retries, on /metrics', async () => {
    await proxy.setMode({ kind: 'status', status: 502 });
    expectProblem(await readSecret(), 503, 'unavailable');
    await proxy.setMode({ kind: 'pass' });
    expect((await readSecret()).status).toBe(200);
    const res = await fetch(`${broker.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(
      /zsb_openbao_call_duration_seconds_count\{operation="kv read",outcome="ok"\} [1-9]/,
    );
    expect(text).toMatch(
      /zsb_openbao_call_duration_seconds_count\{operation="kv read",outcome="unavailable"\} [1-9]/,
    );
    expect(text).toMatch(/zsb_openbao_call_duration_seconds_bucket\{le="0.005",operation="health"/);
    expect(text).toMatch(/zsb_openbao_retries_total\{operation="kv read"\} [1-9]/);
    expect(text).toMatch(/zsb_keyset_refreshes_total\{outcome="ok"\} [1-9]/);
    // Closed label sets only: no path, token, secret value, issuer or proxy address.
    for (const leak of [brokerToken, CLOUDS.password, prefix, issuer.issuer, proxy.url]) {
      expect(text).not.toContain(leak);
    }
  });

  it('/readyz follows OpenBao: failing while unreachable, ready as soon as it is back', async () => {
    await proxy.setMode({ kind: 'refuse' });
    const down = await readiness();
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ ready: false, checks: { openbao: { status: 'failing' } } });
    await proxy.setMode({ kind: 'pass' });
    await until(async () => (await readiness()).status === 200, 5000);
    expect((await readiness()).body).toMatchObject({
      ready: true,
      checks: { openbao: { status: 'ok' } },
    });
    expect(logs.text()).not.toContain(brokerToken);
  });
});

describe('the OpenBao client through the fault proxy', () => {
  const client = (options: Partial<Parameters<typeof createOpenBaoClient>[0]> = {}) =>
    createOpenBaoClient({
      addresses: [proxy.url],
      timeoutMs: 5000,
      maxConnections: 2,
      token: () => bao.rootToken,
      ...options,
    });
  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (error: unknown) => error,
    );
  const sentTo = (pathPrefix: string) =>
    proxy.seen.filter((r) => r.path.startsWith(pathPrefix)).length;

  it('sends calls that create something once, and repeats reads and revocations', async () => {
    const admin = client({ retryBaseDelayMs: 1 });
    await proxy.setMode({ kind: 'status', status: 502 });
    const created: Array<[string, Promise<unknown>, string]> = [
      [
        'kv write',
        admin.kvWrite('secret', `${prefix}/written`, { a: 1 }),
        `/v1/secret/data/${prefix}/written`,
      ],
      [
        'token create',
        admin.createToken({ policies: ['default'], ttlSeconds: 60 }),
        '/v1/auth/token/create',
      ],
      ['wrapped read', admin.kvReadWrapped('secret', `${prefix}/clouds`, 60), KV_PATH],
      ['wrap', admin.wrapData({ a: 1 }, 60), '/v1/sys/wrapping/wrap'],
    ];
    for (const [name, call, pathPrefix] of created) {
      expect(await failure(call), name).toMatchObject({ kind: 'unavailable', status: 502 });
      expect(sentTo(pathPrefix), name).toBe(1);
    }
    proxy.resetCount();
    expect(await failure(admin.kvRead('secret', `${prefix}/clouds`))).toMatchObject({
      kind: 'unavailable',
    });
    expect(sentTo(KV_PATH)).toBe(3);
    expect(await failure(admin.revokeAccessor('nonexistent'))).toMatchObject({
      kind: 'unavailable',
    });
    expect(sentTo('/v1/auth/token/revoke-accessor')).toBe(3);
  });

  it('takes the attempt count and backoff base as options, the backoff capped', async () => {
    await proxy.setMode({ kind: 'status', status: 503 });
    expect(
      await failure(client({ maxAttempts: 1 }).kvRead('secret', `${prefix}/clouds`)),
    ).toMatchObject({
      kind: 'sealed',
    });
    expect(sentTo(KV_PATH)).toBe(1);

    proxy.resetCount();
    const started = performance.now();
    const patient = client({ maxAttempts: 5, retryBaseDelayMs: 60000 });
    expect(await failure(patient.kvRead('secret', `${prefix}/clouds`))).toMatchObject({
      kind: 'sealed',
    });
    expect(sentTo(KV_PATH)).toBe(5);
    // Four waits of at most 400 ms each, whatever the base says.
    expect(performance.now() - started).toBeLessThan(4 * 400 + 1000);
  });

  it('reads an answer up to maxResponseBytes and refuses a larger one, unrepeated', async () => {
    const small = client({ maxResponseBytes: 64 * 1024 });
    expect(await small.kvRead('secret', `${prefix}/clouds`)).toEqual({ data: CLOUDS, version: 1 });
    // undici reuses a connection one event loop turn after its answer, so calls made one
    // after another use two connections: both are open before counting.
    expect(await small.kvRead('secret', `${prefix}/clouds`)).toEqual({ data: CLOUDS, version: 1 });
    await proxy.setMode({ kind: 'oversize', bytes: 32 * 1024, ...KV_SHAPED });
    // The bound is per answer: answers on one kept-alive connection do not add up.
    const connectionsBefore = proxy.connections;
    for (let i = 0; i < 4; i++) {
      expect((await small.kvRead('secret', `${prefix}/clouds`))?.version).toBe(1);
    }
    expect(proxy.connections).toBe(connectionsBefore);
    proxy.resetCount();
    await proxy.setMode({
      kind: 'oversize',
      bytes: 128 * 1024,
      declareLength: false,
      ...KV_SHAPED,
    });
    expect(await failure(small.kvRead('secret', `${prefix}/clouds`))).toMatchObject({
      kind: 'upstream',
    });
    expect(sentTo(KV_PATH)).toBe(1);
    await proxy.setMode({ kind: 'pass' });
    expect(await small.kvRead('secret', `${prefix}/clouds`)).toEqual({ data: CLOUDS, version: 1 });
  });
  it('connects only to its configured addresses: a localhost address works, HTTP_PROXY is never used', async () => {
    const viaName = client({ addresses: [proxy.url.replace('127.0.0.1', 'localhost')] });
    expect(await viaName.kvRead('secret', `${prefix}/clouds`)).toEqual({
      data: CLOUDS,
      version: 1,
    });

    const tokensSeen: string[] = [];
    const forwardProxy: Server = createServer((req, res) => {
      tokensSeen.push(String(req.headers['x-vault-token'] ?? ''));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{}}');
    });
    await new Promise<void>((resolve) => forwardProxy.listen(0, '127.0.0.1', resolve));
    const address = forwardProxy.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const names = ['HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'];
    const saved = Object.fromEntries(names.map((name) => [name, process.env[name]]));
    for (const name of names) delete process.env[name];
    process.env.HTTP_PROXY = `http://127.0.0.1:${port}`;
    try {
      // The transport (node:http) never consults proxy variables: the call goes straight
      // to the configured address, and the proxy sees nothing.
      expect(await client().kvRead('secret', `${prefix}/clouds`)).toEqual({
        data: CLOUDS,
        version: 1,
      });
      expect(tokensSeen).toEqual([]);
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      await new Promise<void>((resolve) => forwardProxy.close(() => resolve()));
    }
  });
});
