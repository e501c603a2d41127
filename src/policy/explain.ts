/**
 * `zsb policy explain`: for one identity, which grants match and which do not (with the
 * first field that failed), what each secret's decision is and which grant decides it,
 * and warnings about grants that are easy to reach: from pre-merge pipelines, narrowed
 * only by names a change author chooses (job, playbook), spanning tenants, or matching a
 * config project's shared token secret without pinning the job (config-projects.ts).
 */
import { configProjectWarnings } from './config-projects.js';
import { decide, matchGrant } from './decide.js';
import { describeRender } from './render-spec.js';
import type {
  Grant,
  MatchField,
  PolicySet,
  PolicySubject,
  PolicyWarning,
  WrapMode,
  ZuulTenantFacts,
} from './types.js';

export interface GrantExplanation {
  readonly name: string;
  readonly matched: boolean;
  readonly failedField: MatchField | null;
  readonly location: string;
}

export type SecretExplanation =
  | {
      readonly decision: 'allow';
      readonly grant: string;
      readonly ttl: number;
      readonly wrap: WrapMode;
      /** The ready file delivered with it (`render:`): format and options, no values. */
      readonly file?: { readonly format: string; readonly summary: string };
    }
  | {
      readonly decision: 'deny';
      readonly grant: null;
      readonly ttl: null;
      readonly reason: string;
    };

export interface Explanation {
  readonly identity: PolicySubject;
  readonly grants: readonly GrantExplanation[];
  readonly secrets: Readonly<Record<string, SecretExplanation>>;
  readonly warnings: readonly PolicyWarning[];
}

/** Pipelines in which the job definition may come from the change under review. */
const PRE_MERGE_PIPELINES = ['check', 'gate'];
const NARROWING_FIELDS: readonly MatchField[] = [
  'issuer',
  'tenant',
  'project',
  'secret',
  'pipeline',
];

function isLiteral(pattern: string): boolean {
  return !pattern.includes('*');
}

/** Warnings depend only on the grant, not on the identity being explained. */
export function grantWarnings(
  grant: Grant,
  zuul?: ZuulTenantFacts,
  secrets?: PolicySet['secrets'],
): PolicyWarning[] {
  const warnings: PolicyWarning[] = [];
  const at = (field?: MatchField) =>
    (field === undefined ? undefined : grant.matchLocations?.[field]) ?? grant.location;
  const pipelines = grant.match.pipeline;
  if (pipelines === undefined) {
    warnings.push({
      grant: grant.name,
      kind: 'pre-merge',
      location: at(),
      message:
        'no pipeline is pinned: jobs in check/gate, whose definition may come from an unreviewed change, can reach its secrets',
    });
  } else {
    const open = pipelines.filter((p) => !isLiteral(p) || PRE_MERGE_PIPELINES.includes(p));
    if (open.length > 0) {
      warnings.push({
        grant: grant.name,
        kind: 'pre-merge',
        location: at('pipeline'),
        message: `pipeline ${open.map((p) => `'${p}'`).join(', ')} admits pre-merge jobs, whose definition may come from an unreviewed change`,
      });
    }
  }
  if (!NARROWING_FIELDS.some((f) => grant.match[f] !== undefined)) {
    warnings.push({
      grant: grant.name,
      kind: 'weak-narrowing',
      location: at(),
      message:
        grant.match.job === undefined && grant.match.playbook === undefined
          ? 'the grant matches every job of every configured issuer'
          : 'only job/playbook narrow the grant, and a change author can choose both in a pre-merge job',
    });
  }
  const tenants = grant.match.tenant;
  if (tenants === undefined || !tenants.every(isLiteral)) {
    warnings.push({
      grant: grant.name,
      kind: 'cross-tenant',
      location: at('tenant'),
      message:
        tenants === undefined
          ? 'no tenant is pinned: projects of every tenant can match'
          : 'the tenant pattern spans several tenants',
    });
  }
  warnings.push(...configProjectWarnings(grant, zuul, secrets));
  return warnings;
}

/**
 * `zuul` adds to (or stands in for) the policy directory's own `zuul:` facts, e.g. the
 * config projects zuul-web listed.
 */
export function explain(
  set: PolicySet,
  subject: PolicySubject,
  names: readonly string[] = [],
  zuul: ZuulTenantFacts | undefined = set.zuul,
): Explanation {
  const considered = names.length > 0 ? [...names] : [...set.secrets.keys()].sort();
  const grants = set.grants.map((g): GrantExplanation => {
    const match = matchGrant(g, subject);
    return {
      name: g.name,
      matched: match.matched,
      failedField: match.matched ? null : match.failedField,
      location: `${g.location.file}:${g.location.line}`,
    };
  });
  const matched = new Set(grants.filter((g) => g.matched).map((g) => g.name));
  // A Map, then fromEntries: a name typed on the command line must not reach a prototype.
  const secrets = new Map<string, SecretExplanation>();
  for (const name of considered) {
    const decision = decide(set, subject, [name]);
    const granted = decision.allowed ? decision.secrets.get(name) : undefined;
    if (granted) {
      secrets.set(name, {
        decision: 'allow',
        grant: granted.grant,
        ttl: granted.ttlSeconds,
        wrap: granted.wrap,
        ...(granted.secret.render === undefined
          ? {}
          : {
              file: {
                format: granted.secret.render.format,
                summary: describeRender(granted.secret.render),
              },
            }),
      });
      continue;
    }
    let reason: string;
    if (!set.secrets.has(name)) reason = 'no policy defines this secret';
    else if (!set.grants.some((g) => g.allow.includes(name)))
      reason = 'no grant allows this secret';
    else reason = 'no grant that allows this secret matches this identity';
    secrets.set(name, { decision: 'deny', grant: null, ttl: null, reason });
  }
  const relevant = set.grants.filter(
    (g) => g.allow.some((n) => considered.includes(n)) || matched.has(g.name),
  );
  return {
    identity: subject,
    grants,
    secrets: Object.fromEntries(secrets),
    warnings: relevant.flatMap((g) => grantWarnings(g, zuul, set.secrets)),
  };
}
