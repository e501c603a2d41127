/** Job routes: /v1/fetch, /v1/secrets/{name}, /v1/whoami. Every one needs a verified token. */
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { bindRequest } from '../../broker/build-binding.js';
import { type BrokerFailure, UNAUTHENTICATED_DETAIL } from '../../broker/failure.js';
import { type FetchDeps, fetchSecrets, loggableNames } from '../../broker/fetch.js';
import { revokeBuild } from '../../broker/revoke.js';
import { whoami } from '../../broker/whoami.js';
import { NAME_PATTERN } from '../../policy/load.js';
import type { AppDeps } from '../app.js';
import { respondProblem } from '../app.js';
import { isJsonMediaType, parseJsonBody, readBodyText } from '../body.js';
import type { AppEnv } from '../types.js';

/** Logical secret names: the same rule as for names in policy files. */
const SecretName = z.string().regex(NAME_PATTERN);

const FetchBody = z
  .object({
    secrets: z
      .array(SecretName)
      .min(1)
      .max(32)
      .refine((names) => new Set(names).size === names.length, 'secret names must be unique'),
    wrap: z.boolean().optional(),
  })
  .strict();

const WRAP_QUERY = new Map([
  ['true', true],
  ['false', false],
]);

/** RFC 6750 b64token after exactly one `Bearer ` (scheme case-insensitive). */
const BEARER = /^[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9\-._~+/]+=*)$/;

const NO_STORE = { 'Cache-Control': 'no-store' };
/** Every 401 (RFC 6750): a missing, bad or expired token, or one whose build no longer runs. */
const INVALID_TOKEN = { 'WWW-Authenticate': 'Bearer error="invalid_token"' };

function unauthenticated(c: Context<AppEnv>, reason: string) {
  c.get('log').reason = reason;
  return respondProblem(c, 'unauthenticated', UNAUTHENTICATED_DETAIL, INVALID_TOKEN);
}

function fromFailure(c: Context<AppEnv>, failure: BrokerFailure) {
  const log = c.get('log');
  log.reason = failure.reason;
  log.outcome = failure.code;
  const headers =
    failure.code === 'unavailable'
      ? { 'Retry-After': '5' }
      : failure.code === 'unauthenticated'
        ? INVALID_TOKEN
        : undefined;
  return respondProblem(c, failure.code, failure.detail, headers);
}

function authenticate(deps: AppDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    if (header === undefined) return unauthenticated(c, 'no authorization header');
    // The size cap comes before any parsing of the token.
    if (header.length > deps.limits.maxTokenBytes + 7) return unauthenticated(c, 'token too large');
    const match = BEARER.exec(header);
    const token = match?.[1];
    if (token === undefined) return unauthenticated(c, 'malformed authorization header');
    const result = await deps.verifier.verify(token);
    if (!result.ok) {
      if (result.failure.kind === 'unavailable') {
        c.get('log').reason = result.failure.reason;
        return respondProblem(c, 'unavailable', 'the token issuer keys are unavailable', {
          'Retry-After': '10',
        });
      }
      return unauthenticated(c, result.failure.reason);
    }
    c.set('identity', result.identity);
    if (deps.rateLimiter) {
      const id = result.identity;
      const taken = deps.rateLimiter.take(
        `${id.issuer}\n${id.tenant}\n${id.project}\n${id.secret}`,
      );
      if (!taken.ok) {
        c.get('log').reason = `${taken.scope} rate limit`;
        return respondProblem(c, 'rate_limited', 'too many requests; retry later', {
          'Retry-After': String(taken.retryAfterSeconds),
        });
      }
    }
    await next();
  };
}

/** 413: read only after authentication, so junk tokens never cost a body read. */
function tooLarge(c: Context<AppEnv>, maxBytes: number) {
  return respondProblem(c, 'payload_too_large', `body larger than ${maxBytes} bytes`);
}

/** 415: JSON routes read only `application/json` (charset utf-8 at most). */
function notJson(c: Context<AppEnv>) {
  return respondProblem(
    c,
    'unsupported_media_type',
    'the body must be sent as Content-Type: application/json',
  );
}

/**
 * The fetch use case's dependencies per request: built once, with only the request's audit
 * context added per request (a fetch's own cost is a few allocations; this was one of them).
 */
function fetchDepsFor(deps: AppDeps): (requestId: string) => FetchDeps {
  const shared: FetchDeps = {
    policies: () => deps.policies.current(),
    openbao: deps.openbao,
    wrapTtlSeconds: deps.wrapTtlSeconds,
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.dynamic ? { dynamic: deps.dynamic } : {}),
  };
  const log = deps.audit;
  if (log === undefined) return () => shared;
  return (requestId) => ({ ...shared, audit: { log, requestId } });
}

/**
 * The request's identity bound to its running build (ADR 0014), or the failure to answer
 * with: 401 for a build that is not running, 503 when zuul-web cannot say.
 */
async function boundIdentity(c: Context<AppEnv>, deps: AppDeps, secrets: readonly string[]) {
  const identity = c.get('identity');
  if (identity === undefined || deps.binding === undefined) return { ok: true as const, identity };
  const audit = deps.audit ? { log: deps.audit, requestId: c.get('requestId') } : undefined;
  const bound = await bindRequest(
    { binder: deps.binding, ...(audit ? { audit } : {}) },
    identity,
    secrets,
  );
  if (!bound.ok) return { ok: false as const, response: fromFailure(c, bound.failure) };
  c.set('identity', bound.value);
  return { ok: true as const, identity: bound.value };
}

export function registerSecretRoutes(app: Hono<AppEnv>, deps: AppDeps): void {
  const auth = authenticate(deps);
  const fetchDeps = fetchDepsFor(deps);

  /** Runs the fetch use case for the request's identity and records it for the log. */
  async function fetchFor(c: Context<AppEnv>, names: readonly string[], wrap: boolean) {
    const log = c.get('log');
    const secrets = loggableNames(deps.policies.current(), names);
    log.secrets = secrets;
    const bound = await boundIdentity(c, deps, secrets);
    if (!bound.ok) return bound;
    const identity = bound.identity;
    if (identity === undefined)
      return { ok: false as const, response: unauthenticated(c, 'no identity') };
    const result = await fetchSecrets(fetchDeps(c.get('requestId')), identity, names, wrap);
    deps.metrics.decisions.inc({
      outcome: result.ok || result.failure.code !== 'forbidden' ? 'allow' : 'deny',
    });
    if (!result.ok) return { ok: false as const, response: fromFailure(c, result.failure) };
    log.grants = result.value.grants;
    const leases = Object.values(result.value.secrets).filter((s) => 'lease' in s && s.lease);
    if (leases.length > 0) deps.metrics.leasesIssued.inc(leases.length);
    return { ok: true as const, value: result.value };
  }

  app.post('/v1/fetch', auth, async (c) => {
    if (!isJsonMediaType(c.req.header('content-type'))) return notJson(c);
    const read = await readBodyText(c, deps.limits.maxBodyBytes);
    if (!read.ok) return tooLarge(c, deps.limits.maxBodyBytes);
    const body = parseJsonBody(read.text);
    if (!body.ok) {
      return respondProblem(
        c,
        'invalid_request',
        body.reason === 'duplicate key'
          ? 'body must not repeat a key (duplicate keys are ambiguous)'
          : 'body must be a JSON object',
      );
    }
    const parsed = FetchBody.safeParse(body.value);
    if (!parsed.success) {
      return respondProblem(
        c,
        'invalid_request',
        'body must be {"secrets": [1-32 unique secret names], "wrap"?: boolean}',
      );
    }
    const result = await fetchFor(c, parsed.data.secrets, parsed.data.wrap ?? false);
    if (!result.ok) return result.response;
    return c.json({ build: result.value.build, secrets: result.value.secrets }, 200, NO_STORE);
  });

  app.get('/v1/secrets/:name', auth, async (c) => {
    const name = SecretName.safeParse(c.req.param('name'));
    const queries = c.req.queries();
    const unknown = Object.keys(queries).filter((k) => k !== 'wrap');
    const wrapValues = queries.wrap ?? [];
    const wrap =
      wrapValues.length === 0
        ? false
        : wrapValues.length === 1
          ? WRAP_QUERY.get(wrapValues[0] ?? '')
          : undefined;
    if (!name.success || unknown.length > 0 || wrap === undefined) {
      return respondProblem(
        c,
        'invalid_request',
        'expected /v1/secrets/{name} with optional ?wrap=true|false',
      );
    }
    const result = await fetchFor(c, [name.data], wrap);
    if (!result.ok) return result.response;
    const entry = result.value.secrets[name.data];
    if (entry === undefined)
      return respondProblem(c, 'internal', `internal error (request id ${c.get('requestId')})`);
    return c.json(entry, 200, NO_STORE);
  });

  app.post('/v1/revoke', auth, async (c) => {
    // No body, or an empty JSON object: nothing else is accepted.
    const read = await readBodyText(c, deps.limits.maxBodyBytes);
    if (!read.ok) return tooLarge(c, deps.limits.maxBodyBytes);
    const text = read.text.trim();
    if (text !== '' && !isJsonMediaType(c.req.header('content-type'))) return notJson(c);
    if (text !== '' && text !== '{}') {
      return respondProblem(c, 'invalid_request', 'POST /v1/revoke takes no body or {}');
    }
    const identity = c.get('identity');
    if (identity === undefined) return unauthenticated(c, 'no identity');
    if (deps.dynamic === undefined) return c.json({ build: identity.build, revoked: 0 });
    const audit = deps.audit ? { log: deps.audit, requestId: c.get('requestId') } : undefined;
    const result = await revokeBuild(deps.dynamic, identity, audit);
    if (!result.ok) return fromFailure(c, result.failure);
    c.get('log').outcome = `revoked ${result.value.revoked}`;
    return c.json(result.value, 200, NO_STORE);
  });

  app.get('/v1/whoami', auth, async (c) => {
    const bound = await boundIdentity(c, deps, []);
    if (!bound.ok) return bound.response;
    const identity = bound.identity;
    if (identity === undefined) return unauthenticated(c, 'no identity');
    const result = whoami(deps.policies.current(), identity);
    if (!result.ok) return fromFailure(c, result.failure);
    return c.json(result.value, 200, NO_STORE);
  });
}
