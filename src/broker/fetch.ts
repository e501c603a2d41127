/**
 * Use case "a job fetches secrets": decide on the whole request first (all or nothing,
 * no OpenBao call on a denial), then read every granted secret; if any read fails, undo
 * what this request already created (wrapping tokens) before answering.
 */
import type { JobIdentity } from '../identity/types.js';
import type { KvReader, TokenAdmin } from '../openbao/interface.js';
import { UnsafePathError } from '../openbao/paths.js';
import { decide } from '../policy/decide.js';
import { renderSecretPath } from '../policy/paths.js';
import type { PolicySet, SecretGrantDecision } from '../policy/types.js';
import { FORBIDDEN_DETAIL, failure, failureFromError, type Result } from './failure.js';

export interface SecretValue {
  readonly data: Readonly<Record<string, unknown>>;
  readonly version: number | null;
  readonly lease: null;
  readonly expiresAt: string | null;
}

export interface WrappedSecret {
  readonly wrapped: { readonly token: string; readonly ttl: number; readonly expiresAt: string };
}

export type DeliveredSecret = SecretValue | WrappedSecret;

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
}

type Delivery = {
  readonly name: string;
  readonly secret: DeliveredSecret;
  readonly accessor?: string;
};

async function deliverKv(
  deps: FetchDeps,
  identity: JobIdentity,
  name: string,
  granted: SecretGrantDecision,
  wrap: boolean,
): Promise<Delivery> {
  const source = granted.secret.source;
  if (source.kind !== 'kv') throw new Error('only kv secrets are delivered by this version');
  const rendered = renderSecretPath(source.path, identity);
  if (!rendered.ok) {
    // Surfaces as 403 through failureFromError, with the reason kept for the log.
    throw new UnsafePathError(rendered.reason);
  }
  if (wrap) {
    const wrapped = await deps.openbao.kvReadWrapped(
      source.mount,
      rendered.path,
      deps.wrapTtlSeconds,
    );
    const now = deps.now?.() ?? Date.now();
    return {
      name,
      accessor: wrapped.accessor,
      secret: {
        wrapped: {
          token: wrapped.token,
          ttl: wrapped.ttlSeconds,
          expiresAt: new Date(now + wrapped.ttlSeconds * 1000).toISOString(),
        },
      },
    };
  }
  const entry = await deps.openbao.kvRead(source.mount, rendered.path);
  if (entry === null) throw new MissingSecretError(name, 'no such KV entry');
  let data: Readonly<Record<string, unknown>> = entry.data;
  if (source.keys) {
    const picked: Record<string, unknown> = {};
    for (const key of source.keys) {
      if (!Object.hasOwn(entry.data, key))
        throw new MissingSecretError(name, 'a listed key is missing from the KV entry');
      picked[key] = entry.data[key];
    }
    data = picked;
  }
  return { name, secret: { data, version: entry.version, lease: null, expiresAt: null } };
}

class MissingSecretError extends Error {
  override readonly name = 'MissingSecretError';
  constructor(
    readonly secretName: string,
    why: string,
  ) {
    super(why);
  }
}

/**
 * Requested names as they may be logged: names the policies define, and a placeholder for
 * anything else, since a job could mistakenly send a secret value where a name belongs.
 */
export function loggableNames(set: PolicySet | undefined, names: readonly string[]): string[] {
  return names.map((name) => (set?.secrets.has(name) ? name : '(undefined name)'));
}

export async function fetchSecrets(
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
    if (granted.secret.source.kind !== 'kv') {
      return failure(
        'internal',
        'internal error',
        `secret ${name}: kind ${granted.secret.source.kind} not supported`,
      );
    }
  }

  const entries = [...decision.secrets.entries()];
  const settled = await Promise.allSettled(
    entries.map(([name, granted]) => deliverKv(deps, identity, name, granted, wrap)),
  );

  const failedIndex = settled.findIndex((s) => s.status === 'rejected');
  if (failedIndex !== -1) {
    // Undo: a wrapping token already minted for this request must not outlive the error.
    const accessors = settled.flatMap((s) =>
      s.status === 'fulfilled' && s.value.accessor ? [s.value.accessor] : [],
    );
    await Promise.allSettled(accessors.map((a) => deps.openbao.revokeAccessor(a)));
    const failed = settled[failedIndex];
    const name = entries[failedIndex]?.[0] ?? '?';
    const error = failed?.status === 'rejected' ? failed.reason : undefined;
    if (error instanceof MissingSecretError) {
      return failure(
        'upstream_error',
        'OpenBao could not deliver a requested secret',
        `secret ${name}: ${error.message}`,
      );
    }
    const mapped = failureFromError(error, name);
    return { ok: false, failure: mapped };
  }

  // fromEntries defines own properties, so no name can reach a prototype.
  const secrets = Object.fromEntries(
    settled.flatMap((s) =>
      s.status === 'fulfilled' ? [[s.value.name, s.value.secret] as const] : [],
    ),
  );
  const grants = Object.fromEntries(entries.map(([name, granted]) => [name, granted.grant]));
  return { ok: true, value: { build: identity.build, secrets, grants } };
}
