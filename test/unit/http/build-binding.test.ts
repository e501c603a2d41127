/**
 * The build binding at the HTTP layer: a real token verifier and a real binder whose
 * zuul-web is a fake fetch with recorded answers (test/unit/zuul/build-answers.ts). A build
 * that is not running gets 401 (audited as `secret.refused`), zuul-web down gets 503 with
 * Retry-After, and grants on buildProject/branch decide with what zuul-web said.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AuditSink, createAuditLog } from '../../../src/audit/log.js';
import { createBuildBinder } from '../../../src/broker/build-binding.js';
import { IssuerConfigSchema } from '../../../src/config/schema.js';
import { ZuulIssuer } from '../../../src/dev/zuul-issuer.js';
import { AUDIENCE, buildTestApp } from '../../support/app.js';
import { expectGeneric401 } from '../../support/http.js';
import { buildAnswer, FINISHED, PROJECTS } from '../zuul/build-answers.js';

const POLICY = `
secrets:
  app-main-key:
    kv: { mount: secret, path: zuul/zsb/app-main }
grants:
  - name: app-main
    match:
      tenant: zsb
      project: localhost/zuul-config
      secret: broker-id
      pipeline: post
      job: zsb-bound
      buildProject: localhost/app
      branch: main
    allow: [app-main-key]
`;

const RUNNING_MAIN = '1'.repeat(32);
const RUNNING_FEATURE = '2'.repeat(32);
const RUNNING_OTHER = '3'.repeat(32);
const ENDED = '4'.repeat(32);
const DOWN = '5'.repeat(32);

const answers: Record<string, () => Response> = {
  [RUNNING_MAIN]: () => Response.json(buildAnswer({ uuid: RUNNING_MAIN })),
  [RUNNING_FEATURE]: () =>
    Response.json(
      buildAnswer({
        uuid: RUNNING_FEATURE,
        ref: { project: 'app', branch: 'feature', ref: 'refs/heads/feature' },
      }),
    ),
  [RUNNING_OTHER]: () =>
    Response.json(
      buildAnswer({
        uuid: RUNNING_OTHER,
        ref: { project: 'other', branch: 'main', ref: 'refs/heads/main' },
      }),
    ),
  [ENDED]: () => Response.json({ ...FINISHED, uuid: ENDED }),
  [DOWN]: () => new Response('bad gateway', { status: 502 }),
};

let issuer: ZuulIssuer;
let t: Awaited<ReturnType<typeof buildTestApp>>;
const auditLines: string[] = [];
let zuulWebRequests = 0;

beforeAll(async () => {
  issuer = await ZuulIssuer.start({ modulusLength: 2048 });
  const fetchImpl = (async (input: string | URL | Request) => {
    const url = String(input);
    zuulWebRequests++;
    if (url.endsWith('/projects')) return Response.json(PROJECTS);
    const answer = answers[url.split('/').pop() ?? ''];
    return answer ? answer() : new Response('not found', { status: 404 });
  }) as typeof fetch;
  const config = IssuerConfigSchema.parse({
    issuer: issuer.issuer,
    audience: AUDIENCE,
    buildBinding: { startWaitSeconds: 0 },
  });
  const sink: AuditSink = {
    append: async (text) => {
      auditLines.push(...text.split('\n').filter(Boolean));
    },
    close: async () => {},
  };
  t = await buildTestApp(POLICY, {
    issuer,
    binding: createBuildBinder([config], { fetchImpl }),
    audit: createAuditLog({ sink, hmacKey: randomBytes(32), writeTimeoutMs: 1000 }),
  });
});
beforeEach(() => {
  auditLines.length = 0;
  t.openbao.calls.length = 0;
  t.openbao.put('secret', 'zuul/zsb/app-main', { key: 'app-main-value' });
});
afterAll(async () => {
  await t.close();
  await issuer.close();
});

function token(build: string): string {
  return issuer.mint({
    sub: 'secret:zsb/localhost/zuul-config/broker-id',
    tenant: 'zsb',
    'build-uuid': build,
    'job-name': 'zsb-bound',
    pipeline: 'post',
    playbook: 'localhost/zuul-config/playbooks/fetch.yaml',
  });
}

function fetchAs(build: string) {
  return t.app.request('/v1/fetch', {
    method: 'POST',
    headers: { authorization: `Bearer ${token(build)}`, 'content-type': 'application/json' },
    body: new Blob([JSON.stringify({ secrets: ['app-main-key'] })]),
  });
}

const events = () => auditLines.map((l) => JSON.parse(l) as Record<string, unknown>);

describe('fetch with the build binding', () => {
  it('a running build of the pinned project and branch gets its secret, audited with both', async () => {
    const res = await fetchAs(RUNNING_MAIN);
    expect(res.status).toBe(200);
    expect(events()).toMatchObject([
      {
        event: 'secret.issued',
        identity: {
          build: RUNNING_MAIN,
          buildProject: 'localhost/app',
          branch: 'main',
          ref: 'refs/heads/main',
        },
      },
    ]);
  });

  it('another branch of the same project, same token secret: 403', async () => {
    const res = await fetchAs(RUNNING_FEATURE);
    expect(res.status).toBe(403);
    expect(events()).toMatchObject([
      { event: 'secret.denied', identity: { branch: 'feature', buildProject: 'localhost/app' } },
    ]);
  });

  it('another project with the same token secret and branch: 403', async () => {
    const res = await fetchAs(RUNNING_OTHER);
    expect(res.status).toBe(403);
    expect(events()).toMatchObject([
      { event: 'secret.denied', identity: { buildProject: 'localhost/other' } },
    ]);
  });

  it('a finished build: 401 invalid_token with the generic body, audited as refused with its reason', async () => {
    await expectGeneric401(await fetchAs(ENDED));
    expect(events()).toMatchObject([
      {
        event: 'secret.refused',
        outcome: 'refused',
        reason: 'build ended (SUCCESS)',
        secrets: ['app-main-key'],
        identity: { build: ENDED },
      },
    ]);
    expect(t.openbao.calls).toEqual([]);
  });

  it('an unknown build: 401, audited', async () => {
    const res = await fetchAs('6'.repeat(32));
    expect(res.status).toBe(401);
    expect(events()).toMatchObject([
      { event: 'secret.refused', reason: 'build unknown to zuul-web' },
    ]);
  });

  it('zuul-web failing: 503 with Retry-After, nothing audited, readiness degraded (still ready)', async () => {
    const res = await fetchAs(DOWN);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(events()).toEqual([]);
    const ready = await t.app.request('/readyz');
    const body = (await ready.json()) as {
      checks: Record<string, { status: string; detail: string }>;
    };
    expect(body.checks.binding?.status).toBe('degraded');
    expect(body.checks.binding?.detail).toContain('http status 502');
  });

  it('whoami shows what the binding learnt, and refuses a finished build', async () => {
    const ok = await t.app.request('/v1/whoami', {
      headers: { authorization: `Bearer ${token(RUNNING_MAIN)}` },
    });
    expect(await ok.json()).toMatchObject({
      identity: { buildProject: 'localhost/app', branch: 'main', ref: 'refs/heads/main' },
      allowed: ['app-main-key'],
    });
    const refused = await t.app.request('/v1/whoami', {
      headers: { authorization: `Bearer ${token(ENDED)}` },
    });
    expect(refused.status).toBe(401);
  });

  it('revoke stays allowed after the build ended (cleanup playbooks run late)', async () => {
    const res = await t.app.request('/v1/revoke', {
      method: 'POST',
      headers: { authorization: `Bearer ${token(ENDED)}` },
    });
    expect(res.status).toBe(200);
  });

  it('an invalid token never reaches zuul-web', async () => {
    const before = zuulWebRequests;
    const res = await t.app.request('/v1/fetch', {
      method: 'POST',
      headers: { authorization: 'Bearer a.b.c', 'content-type': 'application/json' },
      body: new Blob([JSON.stringify({ secrets: ['app-main-key'] })]),
    });
    expect(res.status).toBe(401);
    expect(events()).toEqual([]);
    expect(zuulWebRequests).toBe(before);
  });
});
