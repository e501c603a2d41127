/**
 * Request rate limits (api.md `limits`): a token bucket per identity (issuer, tenant,
 * project, Zuul secret) and one global bucket, both checked after the token is verified,
 * so a flood of invalid tokens cannot use up the budget of valid jobs. Memory is bounded:
 * at most `maxIdentities` buckets are kept (least recently used are dropped; a dropped
 * bucket starts full again, which errs toward serving).
 */
import { LRUCache } from 'lru-cache';

export interface BucketLimit {
  /** Tokens added per second. */
  readonly rate: number;
  /** Bucket size: the largest burst. */
  readonly burst: number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export interface RateLimiter {
  /** Takes one token for `identityKey`; when refused, the seconds to wait. */
  take(
    identityKey: string,
  ): { ok: true } | { ok: false; retryAfterSeconds: number; scope: 'identity' | 'global' };
}

function refill(bucket: Bucket, limit: BucketLimit, nowMs: number): void {
  const elapsed = Math.max(0, nowMs - bucket.updatedMs) / 1000;
  bucket.tokens = Math.min(limit.burst, bucket.tokens + elapsed * limit.rate);
  bucket.updatedMs = nowMs;
}

function waitSeconds(bucket: Bucket, limit: BucketLimit): number {
  return Math.max(1, Math.ceil((1 - bucket.tokens) / limit.rate));
}

export function createRateLimiter(
  limits: { readonly perIdentity: BucketLimit; readonly global: BucketLimit },
  options: { readonly now?: () => number; readonly maxIdentities?: number } = {},
): RateLimiter {
  const now = options.now ?? Date.now;
  const perIdentity = new LRUCache<string, Bucket>({ max: options.maxIdentities ?? 10000 });
  const global: Bucket = { tokens: limits.global.burst, updatedMs: now() };
  return {
    take(identityKey) {
      const nowMs = now();
      refill(global, limits.global, nowMs);
      let bucket = perIdentity.get(identityKey);
      if (bucket === undefined) {
        bucket = { tokens: limits.perIdentity.burst, updatedMs: nowMs };
        perIdentity.set(identityKey, bucket);
      }
      refill(bucket, limits.perIdentity, nowMs);
      if (bucket.tokens < 1)
        return {
          ok: false,
          retryAfterSeconds: waitSeconds(bucket, limits.perIdentity),
          scope: 'identity',
        };
      if (global.tokens < 1)
        return {
          ok: false,
          retryAfterSeconds: waitSeconds(global, limits.global),
          scope: 'global',
        };
      bucket.tokens -= 1;
      global.tokens -= 1;
      return { ok: true };
    },
  };
}
