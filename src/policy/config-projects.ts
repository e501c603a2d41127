/**
 * The `config-project-identity` warning: a grant that reaches the token secret of a Zuul
 * config project without pinning what distinguishes one job from another.
 *
 * Zuul puts the project that *defines* the token secret into `sub`, not the project a build
 * runs for (shared/design/zuul-token.md, observed with 14.3.0). A token secret defined once
 * in a config project therefore gives every job that uses it, for every project, the same
 * tenant/project/secret identity: `project: <config project>` says nothing about which
 * repository a build is for, and `{project}` in a path names the config project. Such a
 * grant is narrow only through `job`, `playbook` (the repository and path of the code that
 * holds the token) and `pipeline` (post-merge, so no unreviewed change chose the job).
 */
import { grantAdmits } from './decide.js';
import type {
  Grant,
  MatchField,
  PolicyWarning,
  SecretDefinition,
  ZuulTenantFacts,
} from './types.js';

/** The fields that tell one job using a shared token secret from another. */
const DISTINGUISHING_FIELDS: readonly MatchField[] = ['job', 'playbook', 'pipeline'];
/** Enough names to find the projects; the rest is counted. */
const SHOWN_PROJECTS = 3;

/** The config projects (as `tenant/project`) whose token secrets the grant can match. */
export function reachedConfigProjects(grant: Grant, facts: ZuulTenantFacts): string[] {
  const reached: string[] = [];
  for (const [tenant, projects] of facts.configProjects) {
    if (!grantAdmits(grant, 'tenant', tenant)) continue;
    for (const project of projects) {
      if (grantAdmits(grant, 'project', project)) reached.push(`${tenant}/${project}`);
    }
  }
  return reached.sort();
}

function listed(names: readonly string[]): string {
  const shown = names.slice(0, SHOWN_PROJECTS).map((n) => `'${n}'`);
  const more = names.length - shown.length;
  return more > 0 ? `${shown.join(', ')} and ${more} more` : shown.join(', ');
}

/** Secrets the grant allows whose KV path is filled with `{project}`. */
function perProjectSecrets(
  grant: Grant,
  secrets: ReadonlyMap<string, SecretDefinition> | undefined,
): string[] {
  return grant.allow.filter((name) => {
    const source = secrets?.get(name)?.source;
    return source?.kind === 'kv' && source.path.includes('{project}');
  });
}

/**
 * Warnings for one grant: it matches a config project's token secret and leaves job,
 * playbook or pipeline open; or it hands such a token a secret whose path uses
 * `{project}` (always the config project there, never the project the build is for).
 */
export function configProjectWarnings(
  grant: Grant,
  facts: ZuulTenantFacts | undefined,
  secrets?: ReadonlyMap<string, SecretDefinition>,
): PolicyWarning[] {
  if (facts === undefined) return [];
  const reached = reachedConfigProjects(grant, facts);
  if (reached.length === 0) return [];
  const location = grant.matchLocations?.project ?? grant.location;
  const warnings: PolicyWarning[] = [];
  const missing = DISTINGUISHING_FIELDS.filter((field) => grant.match[field] === undefined);
  if (missing.length > 0) {
    const pinnedBy = grant.match.project === undefined ? 'its tenant/secret fields' : 'project';
    warnings.push({
      grant: grant.name,
      kind: 'config-project-identity',
      message:
        `matches the token secret of config project ${listed(reached)} by ${pinnedBy} without ${missing.join(', ')}: ` +
        'a token secret defined in a config project gives every job that uses it, for every project, one identity ' +
        '(sub names the project that defines the secret, not the project a build runs for); ' +
        'pin job, playbook and pipeline, or let each project define its own token secret',
      location,
    });
  }
  const placeholders = perProjectSecrets(grant, secrets);
  if (placeholders.length > 0) {
    warnings.push({
      grant: grant.name,
      kind: 'config-project-identity',
      message:
        `allows ${listed(placeholders)}, whose path uses {project}, to the token secret of config project ${listed(reached)}: ` +
        'for that token {project} is always the config project, never the project a build runs for',
      location,
    });
  }
  return warnings;
}
