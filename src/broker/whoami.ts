/** Use case "who am I": the verified identity and what it may fetch; never a value. */
import type { JobIdentity } from '../identity/types.js';
import { allowedFor } from '../policy/decide.js';
import type { PolicySet } from '../policy/types.js';
import { failure, type Result } from './failure.js';

export interface WhoamiAnswer {
  /** The verified identity as JSON: every field but `issuedAt`, `expiresAt` as ISO time. */
  readonly identity: Omit<JobIdentity, 'issuedAt' | 'expiresAt'> & { readonly expiresAt: string };
  readonly allowed: readonly string[];
  readonly grants: readonly string[];
}

export function whoami(
  policies: PolicySet | undefined,
  identity: JobIdentity,
): Result<WhoamiAnswer> {
  if (policies === undefined)
    return failure('unavailable', 'no policy set is loaded', 'no policy set loaded');
  const { secrets, grants } = allowedFor(policies, identity);
  return {
    ok: true,
    value: {
      identity: {
        issuer: identity.issuer,
        tenant: identity.tenant,
        project: identity.project,
        secret: identity.secret,
        build: identity.build,
        job: identity.job,
        pipeline: identity.pipeline,
        playbook: identity.playbook,
        // From the build binding (ADR 0014), when the issuer has one.
        ...(identity.buildProject === undefined ? {} : { buildProject: identity.buildProject }),
        ...(identity.branch === undefined ? {} : { branch: identity.branch }),
        ...(identity.ref === undefined ? {} : { ref: identity.ref }),
        expiresAt: identity.expiresAt.toISOString(),
      },
      allowed: secrets,
      grants,
    },
  };
}
