/** Use case "revoke my build": every token and certificate the broker issued for the caller's build. */
import type { AuditLog } from '../audit/log.js';
import type { JobIdentity } from '../identity/types.js';
import type { BuildRef, LeaseLedger } from '../leases/ledger.js';
import { type BuildTokenCache, forgetBuild } from './dynamic.js';
import { failure, failureFromError, type Result } from './failure.js';
import { auditUnavailable } from './fetch.js';

export interface RevokeDeps {
  readonly ledger: LeaseLedger;
  readonly cache: BuildTokenCache;
}

export async function revokeBuild(
  deps: RevokeDeps,
  identity: JobIdentity,
  audit?: { readonly log: Pick<AuditLog, 'revoked'>; readonly requestId: string },
): Promise<Result<{ build: string; revoked: number }>> {
  // Only the verified identity's own build: a job can never name another build here. A
  // build-uuid is unique only within one Zuul, so the build is (issuer, build-uuid).
  const build: BuildRef = { issuer: identity.issuer, build: identity.build };
  forgetBuild(deps.cache, build);
  let outcome: Awaited<ReturnType<LeaseLedger['revokeBuild']>>;
  try {
    outcome = await deps.ledger.revokeBuild(build);
  } catch (error) {
    return { ok: false, failure: failureFromError(error, '(build ledger)') };
  }
  if (audit) {
    // Revoking is idempotent: an unrecorded revocation is answered 503 and the job's retry
    // is recorded (with what was left to revoke).
    try {
      await audit.log.revoked({
        requestId: audit.requestId,
        identity,
        revoked: outcome.revoked,
        failed: outcome.failed,
      });
    } catch (error) {
      return auditUnavailable(error);
    }
  }
  if (outcome.failed > 0) {
    return failure(
      'unavailable',
      'some of the build leases could not be revoked yet; call again',
      `revoke: ${outcome.revoked} revoked, ${outcome.failed} failed`,
    );
  }
  return { ok: true, value: { build: identity.build, revoked: outcome.revoked } };
}
