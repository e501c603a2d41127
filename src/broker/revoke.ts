/** Use case "revoke my build": every token and certificate the broker issued for the caller's build. */
import type { JobIdentity } from '../identity/types.js';
import type { LeaseLedger } from '../leases/ledger.js';
import { type BuildTokenCache, forgetBuild } from './dynamic.js';
import { failure, failureFromError, type Result } from './failure.js';

export interface RevokeDeps {
  readonly ledger: LeaseLedger;
  readonly cache: BuildTokenCache;
}

export async function revokeBuild(
  deps: RevokeDeps,
  identity: JobIdentity,
): Promise<Result<{ build: string; revoked: number }>> {
  // Only the verified identity's own build: a job can never name another build here.
  const build = identity.build;
  forgetBuild(deps.cache, build);
  let outcome: Awaited<ReturnType<LeaseLedger['revokeBuild']>>;
  try {
    outcome = await deps.ledger.revokeBuild(build);
  } catch (error) {
    return { ok: false, failure: failureFromError(error, '(build ledger)') };
  }
  if (outcome.failed > 0) {
    return failure(
      'unavailable',
      'some of the build leases could not be revoked yet; call again',
      `revoke: ${outcome.revoked} revoked, ${outcome.failed} failed`,
    );
  }
  return { ok: true, value: { build, revoked: outcome.revoked } };
}
