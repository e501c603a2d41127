/**
 * Issuing dynamic secrets (database credentials, certificates, OpenBao tokens) for one
 * build. Everything is issued under a per-build orphan token whose TTL is the grant's
 * TTL; its accessor is written to the build's ledger before it issues anything, so the
 * build can be revoked from any broker instance, and OpenBao expires it all if nobody does.
 */
import { LRUCache } from 'lru-cache';
import type { BuildRef, LeaseLedger } from '../leases/ledger.js';
import type { BuildToken, DynamicIssuer, Issued, TokenAdmin } from '../openbao/interface.js';
import { UnsafePathError } from '../openbao/paths.js';
import { renderCommonName } from '../policy/paths.js';
import type { PolicySubject, SecretGrantDecision } from '../policy/types.js';
import type { DeliveredSecret } from './delivered.js';

export interface DynamicDeps {
  readonly openbao: DynamicIssuer & TokenAdmin;
  readonly ledger: LeaseLedger;
  /** The OpenBao token role that creates build tokens (see `zsb policy compile`). */
  readonly buildTokenRole: string;
  /** The ACL policy every build token carries (read creds, issue certificates). */
  readonly buildPolicy: string;
  readonly cache: BuildTokenCache;
  readonly now: () => number;
}

interface CachedBuildToken extends BuildToken {
  readonly expiresAtMs: number;
  readonly policiesKey: string;
  /** The build's revocation epoch it was recorded under: after a revoke it is never reused. */
  readonly epoch: number;
}

export type BuildTokenCache = LRUCache<string, CachedBuildToken>;

/** Bounded: at most this many builds' tokens are kept, each only for its own lifetime. */
export function createBuildTokenCache(max = 10000): BuildTokenCache {
  return new LRUCache<string, CachedBuildToken>({ max });
}

/** Build tokens in the cache that have not expired yet (revoked ones are forgotten). */
export function liveBuildTokens(cache: BuildTokenCache, now: number): number {
  let live = 0;
  for (const entry of cache.values()) if (entry.expiresAtMs > now) live++;
  return live;
}

/** Something this request created that must be undone if the request fails. */
export type Undo =
  | { readonly kind: 'lease'; readonly id: string }
  | { readonly kind: 'accessor'; readonly accessor: string }
  /** A wrapped dynamic secret: unwrapped by the broker itself to revoke what it holds. */
  | {
      readonly kind: 'wrapped';
      readonly token: string;
      readonly accessor: string;
      /** For a wrapped certificate: the PKI mount to revoke its serial at. */
      readonly mount?: string;
    }
  | { readonly kind: 'certificate'; readonly mount: string; readonly serial: string };

export interface DynamicDelivery {
  readonly entry: DeliveredSecret;
  readonly undo: readonly Undo[];
  readonly certificate?: {
    readonly mount: string;
    readonly serial: string;
    readonly expiresAt: string;
  };
}

export class BuildSession {
  private constructor(
    private readonly deps: DynamicDeps,
    readonly buildToken: CachedBuildToken,
    /** Created by this request (not reused): revoke it too if the request fails. */
    readonly fresh: boolean,
  ) {}

  /**
   * The build's token for this TTL and these policies: reused from an earlier request of
   * the same build when it was created with the same TTL (so leases stay bounded by the
   * grant) and has at least half its life left; otherwise created and recorded first.
   */
  static async open(
    deps: DynamicDeps,
    build: BuildRef,
    epoch: number,
    ttlSeconds: number,
    tokenPolicies: readonly string[],
  ): Promise<BuildSession> {
    const policies = [...new Set([deps.buildPolicy, ...tokenPolicies])].sort();
    const policiesKey = `${ttlSeconds}|${policies.join(',')}`;
    const cacheKey = buildTokenKey(build, policiesKey);
    const cached = deps.cache.get(cacheKey);
    const now = deps.now();
    if (
      cached &&
      cached.policiesKey === policiesKey &&
      // Revoked since (by this or another instance): its token is gone.
      cached.epoch === epoch &&
      cached.expiresAtMs - now >= (ttlSeconds * 1000) / 2
    ) {
      return new BuildSession(deps, cached, false);
    }
    const created = await deps.openbao.createBuildToken(deps.buildTokenRole, policies, ttlSeconds);
    const expiresAtMs = now + created.ttlSeconds * 1000;
    try {
      await deps.ledger.append(
        build,
        [
          {
            kind: 'build-token',
            accessor: created.accessor,
            expiresAt: new Date(expiresAtMs).toISOString(),
          },
        ],
        // Recorded only if no revoke started since this request began.
        { epoch },
      );
    } catch (error) {
      // Unrecorded, it must not issue anything: revoke it (it holds nothing yet).
      await deps.openbao.revokeAccessor(created.accessor).catch(() => undefined);
      throw error;
    }
    const token: CachedBuildToken = { ...created, expiresAtMs, policiesKey, epoch };
    deps.cache.set(cacheKey, token, { ttl: created.ttlSeconds * 1000 });
    return new BuildSession(deps, token, true);
  }

  private expiresAt(leaseSeconds: number | undefined): { ttl: number; at: string } {
    const now = this.deps.now();
    const end = Math.min(
      this.buildToken.expiresAtMs,
      leaseSeconds === undefined ? Number.POSITIVE_INFINITY : now + leaseSeconds * 1000,
    );
    return { ttl: Math.max(0, Math.floor((end - now) / 1000)), at: new Date(end).toISOString() };
  }

  private wrappedEntry(
    issued: Extract<Issued, { wrapped: true }>,
    pkiMount?: string,
  ): DynamicDelivery {
    const now = this.deps.now();
    return {
      entry: {
        wrapped: {
          token: issued.wrap.token,
          ttl: issued.wrap.ttlSeconds,
          expiresAt: new Date(now + issued.wrap.ttlSeconds * 1000).toISOString(),
        },
      },
      undo: [
        {
          kind: 'wrapped',
          token: issued.wrap.token,
          accessor: issued.wrap.accessor,
          ...(pkiMount === undefined ? {} : { mount: pkiMount }),
        },
      ],
    };
  }

  async issue(
    subject: PolicySubject,
    granted: SecretGrantDecision,
    wrapTtlSeconds: number | undefined,
  ): Promise<DynamicDelivery> {
    const source = granted.secret.source;
    const token = this.buildToken.token;
    const issuer = this.deps.openbao;
    switch (source.kind) {
      case 'database': {
        const issued = await issuer.databaseCreds(token, source.mount, source.role, wrapTtlSeconds);
        if (issued.wrapped) return this.wrappedEntry(issued);
        const { ttl, at } = this.expiresAt(issued.lease?.ttlSeconds);
        return {
          entry: {
            data: issued.data,
            version: null,
            lease: issued.lease
              ? { id: issued.lease.id, ttl, renewable: issued.lease.renewable }
              : null,
            expiresAt: at,
          },
          undo: issued.lease ? [{ kind: 'lease', id: issued.lease.id }] : [],
        };
      }
      case 'pki': {
        const name = renderCommonName(source.commonName, subject);
        if (!name.ok) throw new UnsafePathError(name.reason);
        const issued = await issuer.pkiIssue(
          token,
          source.mount,
          source.role,
          name.name,
          granted.ttlSeconds,
          wrapTtlSeconds,
        );
        if (issued.wrapped) return this.wrappedEntry(issued, source.mount);
        const serial =
          typeof issued.data.serial_number === 'string' ? issued.data.serial_number : '';
        const expiration =
          typeof issued.data.expiration === 'number' ? issued.data.expiration * 1000 : undefined;
        const expiresAt = new Date(
          expiration ?? this.deps.now() + granted.ttlSeconds * 1000,
        ).toISOString();
        return {
          entry: {
            data: issued.data,
            version: null,
            lease: issued.lease
              ? {
                  id: issued.lease.id,
                  ttl: this.expiresAt(issued.lease.ttlSeconds).ttl,
                  renewable: issued.lease.renewable,
                }
              : null,
            expiresAt,
          },
          undo: [
            ...(serial ? [{ kind: 'certificate' as const, mount: source.mount, serial }] : []),
            ...(issued.lease ? [{ kind: 'lease' as const, id: issued.lease.id }] : []),
          ],
          ...(serial ? { certificate: { mount: source.mount, serial, expiresAt } } : {}),
        };
      }
      case 'token': {
        const issued = await issuer.childToken(
          token,
          source.policies,
          granted.ttlSeconds,
          wrapTtlSeconds,
        );
        if (issued.wrapped) return this.wrappedEntry(issued);
        const accessor = typeof issued.data.accessor === 'string' ? issued.data.accessor : '';
        const { at } = this.expiresAt(granted.ttlSeconds);
        return {
          entry: { data: issued.data, version: null, lease: null, expiresAt: at },
          undo: accessor ? [{ kind: 'accessor', accessor }] : [],
        };
      }
      default:
        throw new Error(`kind ${source.kind} is not dynamic`);
    }
  }

  /** Revokes the build token when this request created it (a failed request's own token). */
  async revokeIfFresh(): Promise<void> {
    if (!this.fresh) return;
    // Also covers a create that timed out but may have succeeded under this token.
    await this.deps.openbao.revokeAccessor(this.buildToken.accessor).catch(() => undefined);
  }
}

/**
 * Undoes what a failed request created: leases by id, tokens by accessor, certificates by
 * serial. A wrapped secret is unwrapped first (the job never got it): revoking only the
 * wrapping token would leave the lease inside alive, and a lease that OpenBao registered
 * after its build token was revoked is reached by nothing else.
 */
export async function undoAll(
  openbao: DynamicIssuer & TokenAdmin,
  undo: readonly Undo[],
): Promise<void> {
  await Promise.allSettled(
    undo.map(async (u) => {
      if (u.kind === 'lease') return openbao.revokeLease(u.id);
      if (u.kind === 'accessor') return openbao.revokeAccessor(u.accessor);
      if (u.kind === 'certificate') return openbao.pkiRevoke(u.mount, u.serial);
      let inner: Issued;
      try {
        inner = await openbao.unwrap(u.token);
      } catch {
        // Already unwrapped or expired: all that is left is the wrapping token itself.
        return openbao.revokeAccessor(u.accessor);
      }
      if (inner.wrapped) return;
      const accessor = inner.data.accessor;
      const serial = inner.data.serial_number;
      await Promise.allSettled([
        ...(inner.lease ? [openbao.revokeLease(inner.lease.id)] : []),
        ...(typeof accessor === 'string' && accessor ? [openbao.revokeAccessor(accessor)] : []),
        ...(typeof serial === 'string' && u.mount !== undefined
          ? [openbao.pkiRevoke(u.mount, serial)]
          : []),
      ]);
    }),
  );
}

/** Build tokens are cached per build (issuer and uuid) and per (TTL, policies). */
export function buildTokenKey(build: BuildRef, policiesKey: string): string {
  return `${buildPrefix(build)}${policiesKey}`;
}

const buildPrefix = (build: BuildRef) => `${build.issuer}\n${build.build}\n`;

/** Forgets every cached build token of a build (after it was revoked). */
export function forgetBuild(cache: BuildTokenCache, build: BuildRef): void {
  const prefix = buildPrefix(build);
  for (const key of [...cache.keys()]) if (key.startsWith(prefix)) cache.delete(key);
}
