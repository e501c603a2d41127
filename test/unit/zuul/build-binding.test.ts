/**
 * The build binding (src/broker/build-binding.ts) and its zuul-web client
 * (src/zuul/build-record.ts) against recorded zuul-web answers (build-answers.ts), served
 * by a fake fetch that counts requests. Time is a fake clock; waiting advances it.
 */
import { describe, expect, it } from 'vitest';
import { type BindingLookupOutcome, createBuildBinder } from '../../../src/broker/build-binding.js';
import { IssuerConfigSchema } from '../../../src/config/schema.js';
import type { JobIdentity } from '../../../src/identity/types.js';
import {
  buildAnswer,
  DASHBOARD_HTML,
  FINISHED,
  NOT_FOUND_BODY,
  PAUSED,
  PROJECTS,
  RETRIED,
  RUNNING_UUID,
  TENANT,
} from './build-answers.js';

const ISSUER = 'https://zuul.example.org';
const START = Date.parse('2026-12-01T13:20:05Z');

type Answer = Response | (() => Response | Promise<Response>);

function json(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
}

/** A zuul-web that answers each build uuid from a queue of answers (the last one repeats). */
function fakeZuulWeb(answers: Record<string, Answer[]>) {
  const requests: { url: string; authorization: string | null }[] = [];
  const fetchImpl = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    const headers = new Headers(init?.headers);
    requests.push({ url, authorization: headers.get('authorization') });
    if (init?.redirect !== 'manual') throw new Error('redirects must not be followed');
    if (url === `${ISSUER}/api/tenant/${TENANT}/projects`) return json(PROJECTS);
    const uuid = url.split('/').pop() ?? '';
    const queue = answers[uuid];
    const next = queue && queue.length > 1 ? queue.shift() : queue?.[0];
    if (next === undefined) return new Response(NOT_FOUND_BODY, { status: 404 });
    return typeof next === 'function' ? next() : next.clone();
  }) as typeof fetch;
  const builds = () => requests.filter((r) => r.url.includes('/build/')).length;
  return { fetchImpl, requests, builds };
}

/** An answer that zuul-web gives only once released, so that requests pile up meanwhile. */
function heldAnswer(make: () => Response): { answer: Answer; release: () => void } {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    answer: async () => {
      await gate;
      return make();
    },
    release: () => release(),
  };
}

function identity(overrides: Partial<JobIdentity> = {}): JobIdentity {
  return {
    issuer: ISSUER,
    tenant: TENANT,
    project: 'localhost/zuul-config',
    secret: 'broker-id',
    build: RUNNING_UUID,
    job: 'zsb-bound',
    pipeline: 'post',
    playbook: 'localhost/zuul-config/playbooks/fetch.yaml',
    issuedAt: new Date(START - 2000),
    expiresAt: new Date(START + 600_000),
    ...overrides,
  };
}

function binderFor(
  web: ReturnType<typeof fakeZuulWeb>,
  binding: Record<string, unknown> = {},
  extra: { authTokens?: Map<string, string> } = {},
) {
  let now = START;
  const outcomes: BindingLookupOutcome[] = [];
  const config = IssuerConfigSchema.parse({
    issuer: ISSUER,
    audience: 'https://secrets.example.org',
    buildBinding: binding,
  });
  const binder = createBuildBinder([config], {
    fetchImpl: web.fetchImpl,
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
    onLookup: (o) => outcomes.push(o),
    ...extra,
  });
  return {
    binder,
    outcomes,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('a running build', () => {
  it('is confirmed, with the canonical project, branch and ref it runs for', async () => {
    const web = fakeZuulWeb({ [RUNNING_UUID]: [json(buildAnswer())] });
    const { binder } = binderFor(web);
    const result = await binder.confirm(identity());
    expect(result).toMatchObject({
      ok: true,
      identity: { buildProject: 'localhost/app', branch: 'main', ref: 'refs/heads/main' },
    });
    expect(web.requests.map((r) => r.url)).toEqual([
      `${ISSUER}/api/tenant/${TENANT}/build/${RUNNING_UUID}`,
      `${ISSUER}/api/tenant/${TENANT}/projects`,
    ]);
  });

  it('an answer about one tenant’s build never serves a token of another tenant', async () => {
    const web = fakeZuulWeb({ [RUNNING_UUID]: [json(buildAnswer())] });
    const { binder } = binderFor(web);
    expect((await binder.confirm(identity())).ok).toBe(true);
    await binder.confirm(identity({ tenant: 'other' }));
    expect(web.builds()).toBe(2);
    expect(web.requests.map((r) => r.url)).toContain(
      `${ISSUER}/api/tenant/other/build/${RUNNING_UUID}`,
    );
  });

  it('a paused build counts as running: its post-run playbooks are still to come', async () => {
    const web = fakeZuulWeb({ [RUNNING_UUID]: [json(PAUSED)] });
    const result = await binderFor(web).binder.confirm(identity());
    expect(result.ok).toBe(true);
  });

  it('one answer serves all of the build’s requests while fresh; one request in flight', async () => {
    const held = heldAnswer(() => json(buildAnswer()));
    const web = fakeZuulWeb({ [RUNNING_UUID]: [held.answer] });
    const { binder, advance } = binderFor(web, { cacheSeconds: 5 });
    const pending = Array.from({ length: 20 }, () => binder.confirm(identity()));
    held.release();
    const results = await Promise.all(pending);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(web.builds()).toBe(1);
    advance(4999);
    await binder.confirm(identity());
    expect(web.builds()).toBe(1);
    advance(1);
    await binder.confirm(identity());
    expect(web.builds()).toBe(2);
  });

  it('a record for another job or pipeline than the token names is refused', async () => {
    const web = fakeZuulWeb({ [RUNNING_UUID]: [json(buildAnswer({ job_name: 'other-job' }))] });
    const { binder } = binderFor(web);
    expect(await binder.confirm(identity())).toEqual({
      ok: false,
      kind: 'refused',
      reason: 'build record does not match the token',
    });
    expect(await binder.confirm(identity({ job: 'other-job', pipeline: 'check' }))).toMatchObject({
      ok: false,
      kind: 'refused',
    });
  });

  it('a short name two connections share gives no buildProject (fail closed)', async () => {
    const web = fakeZuulWeb({
      [RUNNING_UUID]: [
        json(buildAnswer({ ref: { project: 'twin', branch: 'main', ref: 'refs/heads/main' } })),
      ],
    });
    const result = await binderFor(web).binder.confirm(identity());
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.identity.buildProject).toBeUndefined();
      expect(result.identity.branch).toBe('main');
    }
  });

  it('a tag build has no branch', async () => {
    const web = fakeZuulWeb({
      [RUNNING_UUID]: [
        json(buildAnswer({ ref: { project: 'app', branch: null, ref: 'refs/tags/v1' } })),
      ],
    });
    const result = await binderFor(web).binder.confirm(identity());
    expect(result.ok && result.identity.branch).toBe(undefined);
    expect(result.ok && result.identity.ref).toBe('refs/tags/v1');
  });

  it('sends the configured zuul-web auth token', async () => {
    const web = fakeZuulWeb({ [RUNNING_UUID]: [json(buildAnswer())] });
    const { binder } = binderFor(web, {}, { authTokens: new Map([[ISSUER, 'eyJ.a.b']]) });
    await binder.confirm(identity());
    expect(web.requests.map((r) => r.authorization)).toEqual(['Bearer eyJ.a.b', 'Bearer eyJ.a.b']);
  });
});

describe('a build that is not running', () => {
  it.each([
    ['finished', FINISHED, 'build ended (SUCCESS)'],
    ['retried (a new build carries on under a new uuid)', RETRIED, 'build ended (RETRY)'],
  ])('%s is refused, and stays refused without asking again', async (_what, answer, reason) => {
    const web = fakeZuulWeb({ [RUNNING_UUID]: [json(answer)] });
    const { binder, advance, outcomes } = binderFor(web);
    expect(await binder.confirm(identity())).toEqual({ ok: false, kind: 'refused', reason });
    advance(3_600_000);
    expect(await binder.confirm(identity())).toEqual({ ok: false, kind: 'refused', reason });
    expect(web.builds()).toBe(1);
    expect(outcomes).toEqual(['ended']);
  });

  it('a build that was running and then ended is refused once the cached answer is stale', async () => {
    const web = fakeZuulWeb({ [RUNNING_UUID]: [json(buildAnswer()), json(FINISHED)] });
    const { binder, advance } = binderFor(web, { cacheSeconds: 5 });
    expect((await binder.confirm(identity())).ok).toBe(true);
    advance(5000);
    expect(await binder.confirm(identity())).toMatchObject({ ok: false, kind: 'refused' });
  });

  it('an unknown build with an old token is refused at once', async () => {
    const web = fakeZuulWeb({});
    const { binder, outcomes } = binderFor(web, { startWaitSeconds: 15 });
    const old = identity({ issuedAt: new Date(START - 60_000) });
    expect(await binder.confirm(old)).toEqual({
      ok: false,
      kind: 'refused',
      reason: 'build unknown to zuul-web',
    });
    expect(outcomes).toEqual(['unknown']);
  });

  it('a young unknown build is waited for (never allowed meanwhile) and confirmed once recorded', async () => {
    const notYet = () => new Response(NOT_FOUND_BODY, { status: 404 });
    const web = fakeZuulWeb({ [RUNNING_UUID]: [notYet, notYet, notYet, json(buildAnswer())] });
    const { binder, outcomes } = binderFor(web, { startWaitSeconds: 15 });
    const result = await binder.confirm(identity({ issuedAt: new Date(START) }));
    expect(result.ok).toBe(true);
    expect(outcomes).toEqual(['unknown', 'unknown', 'unknown', 'running']);
  });

  it('a young unknown build that never appears is refused when the wait is over, polled once a second', async () => {
    const web = fakeZuulWeb({});
    const { binder } = binderFor(web, { startWaitSeconds: 10 });
    const result = await binder.confirm(identity({ issuedAt: new Date(START) }));
    expect(result).toMatchObject({
      ok: false,
      kind: 'refused',
      reason: 'build unknown to zuul-web',
    });
    // At 0, 1, …, 9 s and once more at the deadline.
    expect(web.builds()).toBe(11);
  });
});

describe('zuul-web cannot say', () => {
  it.each([
    [
      'its dashboard HTML (a wrong URL)',
      () => new Response(DASHBOARD_HTML, { status: 200 }),
      'invalid',
    ],
    ['JSON that is not a build record', () => json({ builds: [] }), 'invalid'],
    ['the record of another build', () => json(buildAnswer({ uuid: 'f'.repeat(32) })), 'invalid'],
    [
      'a record with a control character in a name',
      () => json(buildAnswer({ job_name: 'zsb\u0000bound' })),
      'invalid',
    ],
    ['a 500', () => new Response('boom', { status: 500 }), 'http_status'],
    ['a 401 (the tenant restricts reads)', () => new Response('', { status: 401 }), 'http_status'],
    [
      'a redirect',
      () =>
        new Response(null, {
          status: 302,
          headers: { location: 'https://elsewhere.example.org/' },
        }),
      'redirect',
    ],
    [
      'an oversized answer',
      () => json(buildAnswer({ error_detail: 'x'.repeat(70_000) })),
      'too_large',
    ],
    ['no connection', () => Promise.reject(new TypeError('fetch failed')), 'unreachable'],
  ] as const)(
    '%s: unavailable, never allowed; readiness degraded until an answer comes',
    async (_what, answer, outcome) => {
      const web = fakeZuulWeb({ [RUNNING_UUID]: [answer, json(buildAnswer())] });
      // With an auth token configured, so that its absence from the reason means something.
      const authTokens = new Map([[ISSUER, 'eyJ.a.b']]);
      const { binder, outcomes } = binderFor(web, {}, { authTokens });
      const result = await binder.confirm(identity());
      expect(web.requests[0]?.authorization).toBe('Bearer eyJ.a.b');
      expect(result).toMatchObject({ ok: false, kind: 'unavailable' });
      if (!result.ok) expect(result.reason).not.toContain('eyJ');
      expect(outcomes).toEqual([outcome]);
      expect(binder.status()).toMatchObject([{ issuer: ISSUER, status: 'degraded' }]);
      expect((await binder.confirm(identity())).ok).toBe(true);
      expect(binder.status()).toMatchObject([{ issuer: ISSUER, status: 'ok' }]);
    },
  );

  it('a failed lookup shared by concurrent requests is counted once', async () => {
    const held = heldAnswer(() => new Response('boom', { status: 500 }));
    const web = fakeZuulWeb({ [RUNNING_UUID]: [held.answer] });
    const { binder, outcomes } = binderFor(web);
    const pending = Array.from({ length: 20 }, () => binder.confirm(identity()));
    held.release();
    const results = await Promise.all(pending);
    expect(results.every((r) => !r.ok && r.kind === 'unavailable')).toBe(true);
    expect(web.builds()).toBe(1);
    expect(outcomes).toEqual(['http_status']);
  });

  it('a project list zuul-web cannot give is unavailable, never a build without its project', async () => {
    const web = fakeZuulWeb({ [RUNNING_UUID]: [json(buildAnswer())] });
    const fetchImpl = (async (input: string | URL | Request, init?: RequestInit) =>
      String(input).endsWith('/projects')
        ? new Response('boom', { status: 500 })
        : web.fetchImpl(input, init)) as typeof fetch;
    const { binder, outcomes } = binderFor({ ...web, fetchImpl });
    const result = await binder.confirm(identity());
    expect(result).toMatchObject({ ok: false, kind: 'unavailable' });
    if (!result.ok) expect(result.reason).toContain('project list');
    expect(binder.status()).toMatchObject([{ status: 'degraded' }]);
    // The build lookup itself succeeded; the metric counts build lookups only.
    expect(outcomes).toEqual(['running']);
  });

  it('a zuul-web that does not answer in time is unavailable after the timeout', async () => {
    const hanging = (async (input: string | URL | Request, init?: RequestInit) =>
      new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason));
        void input;
      })) as typeof fetch;
    const config = IssuerConfigSchema.parse({
      issuer: ISSUER,
      audience: 'a',
      buildBinding: { timeoutMs: 100 },
    });
    const binder = createBuildBinder([config], { fetchImpl: hanging });
    const result = await binder.confirm(identity());
    expect(result).toMatchObject({ ok: false, kind: 'unavailable' });
    if (!result.ok) expect(result.reason).toContain('timeout');
  });
});

describe('issuers without a binding', () => {
  it('pass their identities unchanged, without asking anyone', async () => {
    const web = fakeZuulWeb({});
    const config = IssuerConfigSchema.parse({ issuer: ISSUER, audience: 'a' });
    const binder = createBuildBinder([config], { fetchImpl: web.fetchImpl });
    expect(binder.bound(ISSUER)).toBe(false);
    expect(await binder.confirm(identity())).toEqual({ ok: true, identity: identity() });
    expect(web.requests).toEqual([]);
    expect(binder.status()).toEqual([]);
  });
});
