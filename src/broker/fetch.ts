/**
 * Use case "a job fetches secrets": decide on the whole request first (all or nothing,
 * no OpenBao call on a denial), then read or issue every granted secret; if anything
 * fails, undo what this request already created (wrapping tokens, leases, child tokens,
 * certificates, a fresh build token) before answering.
 */
import type { AuditedSecret, AuditLog } from '../audit/log.js';
import type { JobIdentity } from '../identity/types.js';
import { type BuildRef, BuildRevokedError, LedgerFullError } from '../leases/ledger.js';
import type { KvReader, TokenAdmin, WrappedResponse } from '../openbao/interface.js';
import { UnsafePathError } from '../openbao/paths.js';
import { decide } from '../policy/decide.js';
import { renderSecretPath } from '../policy/paths.js';
import type { PolicySet, SecretGrantDecision } from '../policy/types.js';
import { renderFile } from '../render/render.js';
import type { RenderedFile } from '../render/types.js';
import type { DeliveredSecret } from './delivered.js';
import { BuildSession, type DynamicDeps, forgetBuild, type Undo, undoAll } from './dynamic.js';
import { FORBIDDEN_DETAIL, failure, failureFromError, type Result } from './failure.js';

export interface FetchAnswer {
  readonly build: string;
  readonly secrets: Readonly<Record<string, DeliveredSecret>>;
  /** For the request log: the deciding grant per secret. */
  readonly grants: Readonly<Record<string, string>>;
}

export interface FetchDeps {
  readonly policies: () => PolicySet | undefined;
  readonly openbao: KvReader & TokenAdmin;
  readonly wrapTtlSeconds: number;
  readonly now?: () => number;
  /** Needed only when policies define dynamic secrets. */
  readonly dynamic?: DynamicDeps;
  /** The audit log and this request's id; the broker always sets it (tests may leave it out). */
  readonly audit?: FetchAudit;
}

export interface FetchAudit {
  readonly log: Pick<AuditLog, 'issued' | 'denied'>;
  readonly requestId: string;
}

/** Fail closed: when the audit event cannot be written, nothing is served. */
export function auditUnavailable(error: unknown) {
  const cause = error instanceof Error ? error.message : 'unknown error';
  return failure('unavailable', 'the audit log is unavailable', `audit: ${cause}`);
}

interface Delivery {
  readonly name: string;
  readonly secret: DeliveredSecret;
  readonly undo: readonly Undo[];
  readonly certificate?: {
    readonly mount: string;
    readonly serial: string;
    readonly expiresAt: string;
  };
}

class MissingSecretError extends Error {
  override readonly name = 'MissingSecretError';
}

/** The secret's data cannot be made into its declared file; the message names no value. */
class RenderFailedError extends Error {
  override readonly name = 'RenderFailedError';
}

/** A failure after which something may have been created: carries what to undo. */
class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
}

async function deliverKv(
  deps: FetchDeps,
  identity: JobIdentity,
  name: string,
  granted: SecretGrantDecision,
  wrap: boolean,
): Promise<Delivery> {
  const source = granted.secret.source;
  if (source.kind !== 'kv') throw new DeliveryError('not a kv secret');
  const rendered = renderSecretPath(source.path, identity);
  // Surfaces as 403 through failureFromError, with the reason kept for the log.
  if (!rendered.ok) throw new UnsafePathError(rendered.reason);
  const render = granted.secret.render;
  const wrapped = (w: WrappedResponse): Delivery => ({
    name,
    undo: [{ kind: 'accessor', accessor: w.accessor }],
    secret: {
      wrapped: {
        token: w.token,
        ttl: w.ttlSeconds,
        expiresAt: new Date((deps.now?.() ?? Date.now()) + w.ttlSeconds * 1000).toISOString(),
      },
      ...(render === undefined ? {} : { file: { format: render.format } }),
    },
  });
  // A whole entry is wrapped by OpenBao as it reads it; selected keys are read, picked and
  // then wrapped, so the wrapping never holds keys the policy does not deliver. A ready
  // file is rendered by the broker, so its secret is read first and wrapped with the file.
  if (wrap && !source.keys && render === undefined) {
    return wrapped(
      await deps.openbao.kvReadWrapped(source.mount, rendered.path, deps.wrapTtlSeconds),
    );
  }
  const entry = await deps.openbao.kvRead(source.mount, rendered.path);
  if (entry === null) throw new MissingSecretError('no such KV entry');
  let data: Readonly<Record<string, unknown>> = entry.data;
  if (source.keys) {
    const picked: Record<string, unknown> = {};
    for (const key of source.keys) {
      if (!Object.hasOwn(entry.data, key))
        throw new MissingSecretError('a listed key is missing from the KV entry');
      picked[key] = entry.data[key];
    }
    data = picked;
  }
  let file: RenderedFile | undefined;
  if (render !== undefined) {
    const result = renderFile(render, data);
    if (!result.ok)
      throw new RenderFailedError(`cannot be rendered as ${render.format}: ${result.reason}`);
    file = result.file;
  }
  if (wrap) {
    const inside = file === undefined ? data : { data, file };
    return wrapped(await deps.openbao.wrapData(inside, deps.wrapTtlSeconds));
  }
  const value = { data, version: entry.version, lease: null, expiresAt: null };
  return { name, undo: [], secret: file === undefined ? value : { ...value, file } };
}

/**
 * Requested names as they may be logged: names the policies define, and a placeholder for
 * anything else, since a job could mistakenly send a secret value where a name belongs.
 */
export function loggableNames(set: PolicySet | undefined, names: readonly string[]): string[] {
  return names.map((name) => (set?.secrets.has(name) ? name : '(undefined name)'));
}

function failureOf(error: unknown, name: string) {
  if (error instanceof RenderFailedError) {
    // Names the secret, the format and the field, never a value: the job can act on it.
    return failure(
      'upstream_error',
      `secret '${name}' ${error.message}`,
      `secret ${name}: ${error.message}`,
    );
  }
  if (error instanceof MissingSecretError) {
    return failure(
      'upstream_error',
      'OpenBao could not deliver a requested secret',
      `secret ${name}: ${error.message}`,
    );
  }
  if (error instanceof BuildRevokedError) {
    return failure(
      'unavailable',
      'the build was revoked while its secrets were being issued; nothing was delivered',
      `secret ${name}: build revoked during issuance, issued secrets taken back`,
    );
  }
  if (error instanceof LedgerFullError) {
    return failure(
      'unavailable',
      'this build holds too many issued secrets',
      `secret ${name}: ${error.message}`,
    );
  }
  return { ok: false as const, failure: failureFromError(error, name) };
}

/** Decides and delivers; a denial (403) is written to the audit log before it is answered. */
export async function fetchSecrets(
  deps: FetchDeps,
  identity: JobIdentity,
  names: readonly string[],
  wrap: boolean,
): Promise<Result<FetchAnswer>> {
  const result = await decideAndDeliver(deps, identity, names, wrap);
  if (result.ok || result.failure.code !== 'forbidden' || deps.audit === undefined) return result;
  try {
    await deps.audit.log.denied({
      requestId: deps.audit.requestId,
      identity,
      secrets: loggableNames(deps.policies(), names),
      reason: result.failure.reason,
    });
  } catch (error) {
    return auditUnavailable(error);
  }
  return result;
}

async function decideAndDeliver(
  deps: FetchDeps,
  identity: JobIdentity,
  names: readonly string[],
  wrap: boolean,
): Promise<Result<FetchAnswer>> {
  const set = deps.policies();
  if (set === undefined)
    return failure('unavailable', 'no policy set is loaded', 'no policy set loaded');
  const decision = decide(set, identity, names);
  if (!decision.allowed) {
    return failure(
      'forbidden',
      FORBIDDEN_DETAIL,
      `denied: ${loggableNames(set, decision.denied).join(', ')}`,
    );
  }
  for (const [name, granted] of decision.secrets) {
    if (wrap && granted.wrap === 'never') {
      return failure(
        'forbidden',
        `secret '${name}' may not be delivered wrapped`,
        `wrap refused for ${name} by grant ${granted.grant}`,
      );
    }
    if (!wrap && granted.wrap === 'required') {
      return failure(
        'forbidden',
        `secret '${name}' must be fetched with wrap: true`,
        `wrap required for ${name} by grant ${granted.grant}`,
      );
    }
  }

  const entries = [...decision.secrets.entries()];
  const dynamicEntries = entries.filter(([, g]) => g.secret.source.kind !== 'kv');
  // One build token per grant TTL, so every lease dies with its own grant's TTL.
  const sessions = new Map<number, BuildSession>();
  const build: BuildRef = { issuer: identity.issuer, build: identity.build };
  // The build's revocation epoch at the start: whatever is issued is kept only if no
  // revoke started before the end (checked below), since a revoke cannot reach a lease
  // that OpenBao registers after it revoked the build token.
  let epoch = 0;
  if (dynamicEntries.length > 0) {
    const dynamic = deps.dynamic;
    if (dynamic === undefined) {
      return failure('internal', 'internal error', 'dynamic secrets requested but not configured');
    }
    try {
      epoch = await dynamic.ledger.epoch(build);
    } catch (error) {
      return failureOf(error, dynamicEntries[0]?.[0] ?? '?');
    }
    const ttls = [...new Set(dynamicEntries.map(([, g]) => g.ttlSeconds))];
    const opened = await Promise.allSettled(
      ttls.map(async (ttl) => {
        const tokenPolicies = dynamicEntries.flatMap(([, g]) =>
          g.ttlSeconds === ttl && g.secret.source.kind === 'token' ? g.secret.source.policies : [],
        );
        sessions.set(ttl, await BuildSession.open(dynamic, build, epoch, ttl, tokenPolicies));
      }),
    );
    const failedOpen = opened.find((o) => o.status === 'rejected');
    if (failedOpen) {
      await Promise.allSettled([...sessions.values()].map((s) => s.revokeIfFresh()));
      return failureOf(failedOpen.reason, dynamicEntries[0]?.[0] ?? '?');
    }
  }

  const settled = await Promise.allSettled(
    entries.map(async ([name, granted]): Promise<Delivery> => {
      if (granted.secret.source.kind === 'kv')
        return deliverKv(deps, identity, name, granted, wrap);
      const session = sessions.get(granted.ttlSeconds);
      if (session === undefined) throw new DeliveryError('no build session');
      const delivered = await session.issue(
        identity,
        granted,
        wrap ? deps.wrapTtlSeconds : undefined,
      );
      return {
        name,
        secret: delivered.entry,
        undo: delivered.undo,
        ...(delivered.certificate ? { certificate: delivered.certificate } : {}),
      };
    }),
  );
  const undo = settled.flatMap((s) => (s.status === 'fulfilled' ? s.value.undo : []));
  const rollback = async () => {
    if (deps.dynamic) await undoAll(deps.dynamic.openbao, undo);
    else {
      await Promise.allSettled(
        undo.map((u) =>
          u.kind === 'accessor' ? deps.openbao.revokeAccessor(u.accessor) : undefined,
        ),
      );
    }
    await Promise.allSettled([...sessions.values()].map((s) => s.revokeIfFresh()));
  };

  const failedIndex = settled.findIndex((s) => s.status === 'rejected');
  if (failedIndex !== -1) {
    await rollback();
    const failed = settled[failedIndex];
    return failureOf(
      failed?.status === 'rejected' ? failed.reason : undefined,
      entries[failedIndex]?.[0] ?? '?',
    );
  }

  const delivered = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const certificates = delivered.flatMap((d) => (d.certificate ? [d.certificate] : []));
  if (sessions.size > 0 && deps.dynamic) {
    try {
      // Certificates carry no lease a build token revocation would reach: record serials.
      // Recording them, or else reading the epoch again, is the check that no revoke began
      // while this request issued.
      if (certificates.length > 0) {
        await deps.dynamic.ledger.append(
          build,
          certificates.map((c) => ({
            kind: 'certificate',
            mount: c.mount,
            serial: c.serial,
            expiresAt: c.expiresAt,
          })),
          { epoch },
        );
      } else {
        await deps.dynamic.ledger.confirm(build, epoch);
      }
    } catch (error) {
      await rollback();
      if (error instanceof BuildRevokedError) forgetBuild(deps.dynamic.cache, build);
      const name = delivered.find((d) => d.certificate)?.name ?? dynamicEntries[0]?.[0] ?? '?';
      return failureOf(error, name);
    }
  }

  if (deps.audit) {
    // Written and synced before any secret leaves the broker; if it cannot be, undo all.
    const decided = new Map(entries);
    const audited = delivered.map((d): AuditedSecret => {
      const granted = decided.get(d.name);
      const secret = d.secret;
      const leaseIds = d.undo.flatMap((u) => (u.kind === 'lease' ? [u.id] : []));
      if ('data' in secret && secret.lease && !leaseIds.includes(secret.lease.id))
        leaseIds.push(secret.lease.id);
      const session = granted ? sessions.get(granted.ttlSeconds) : undefined;
      return {
        name: d.name,
        grant: granted?.grant ?? '?',
        kind: granted?.secret.source.kind ?? '?',
        wrapped: 'wrapped' in secret,
        ...('data' in secret ? { version: secret.version } : {}),
        leaseIds,
        accessors: d.undo.flatMap((u) =>
          u.kind === 'accessor' || u.kind === 'wrapped' ? [u.accessor] : [],
        ),
        ...(session ? { buildTokenAccessor: session.buildToken.accessor } : {}),
        ...(d.certificate ? { certificateSerial: d.certificate.serial } : {}),
        ...(granted?.secret.render ? { file: granted.secret.render.format } : {}),
      };
    });
    try {
      await deps.audit.log.issued({ requestId: deps.audit.requestId, identity, secrets: audited });
    } catch (error) {
      await rollback();
      return auditUnavailable(error);
    }
  }

  // fromEntries defines own properties, so no name can reach a prototype.
  const secrets = Object.fromEntries(delivered.map((d) => [d.name, d.secret] as const));
  const grants = Object.fromEntries(entries.map(([name, granted]) => [name, granted.grant]));
  return { ok: true, value: { build: identity.build, secrets, grants } };
}
