/**
 * The policy decision: pure, allow-only, default deny (policy.md "Matching").
 * Runs on every request, so match patterns are compiled once per grant object
 * (a PolicySet is immutable and swapped whole on reload, so the cache can never
 * go stale and is released together with the set).
 */
import { compileGlob } from './glob.js';
import { grantIndexOf } from './grant-index.js';
import type {
  Decision,
  Grant,
  MatchField,
  PolicySet,
  PolicySubject,
  SecretGrantDecision,
  WrapMode,
} from './types.js';
import { MATCH_FIELDS } from './types.js';

export type GrantMatch =
  | { readonly matched: true }
  | { readonly matched: false; readonly failedField: MatchField };

type Matcher = (value: string) => boolean;
type CompiledMatch = ReadonlyArray<readonly [MatchField, Matcher]>;

const compiledGrants = new WeakMap<Grant, CompiledMatch>();

// A pattern that does not compile matches nothing: grants built by hand (not via
// the loader) fail closed instead of throwing in the request path.
const NEVER: Matcher = () => false;

function compileGrant(grant: Grant): CompiledMatch {
  const cached = compiledGrants.get(grant);
  if (cached !== undefined) return cached;
  const compiled: [MatchField, Matcher][] = [];
  for (const field of MATCH_FIELDS) {
    const patterns = grant.match[field];
    if (patterns === undefined) continue;
    const matchers = patterns.map((p) => {
      const glob = compileGlob(p);
      return glob.ok ? glob.match : NEVER;
    });
    compiled.push([field, (value) => matchers.some((m) => m(value))]);
  }
  compiledGrants.set(grant, compiled);
  return compiled;
}

/** Whether the grant's patterns for one field admit `value` (an absent field admits anything). */
export function grantAdmits(grant: Grant, field: MatchField, value: string): boolean {
  const entry = compileGrant(grant).find(([listed]) => listed === field);
  return entry === undefined || entry[1](value);
}

/**
 * Whether every listed field of the grant matches the subject. An absent field
 * matches anything (so an absent `issuer` means any configured issuer: only
 * configured issuers ever produce a subject). Fields are tried in MATCH_FIELDS
 * order, so the reported field is stable for `explain`.
 */
export function matchGrant(grant: Grant, subject: PolicySubject): GrantMatch {
  for (const [field, matches] of compileGrant(grant)) {
    // A build fact the binding did not supply matches nothing (fail closed).
    const value = subject[field];
    if (value === undefined || !matches(value)) return { matched: false, failedField: field };
  }
  return { matched: true };
}

/**
 * Wrapping of a secret allowed by several grants: `required` only if every
 * allowing grant requires it (policy.md), `never` only if every one forbids it;
 * any other mix (an `optional` grant, or `required` next to `never`) leaves the
 * choice to the job, as the most permissive reading of the union.
 */
function combineWrap(modes: readonly WrapMode[]): WrapMode {
  if (modes.length > 0 && modes.every((m) => m === 'required')) return 'required';
  if (modes.length > 0 && modes.every((m) => m === 'never')) return 'never';
  return 'optional';
}

/**
 * The union rule for one secret over the grants allowing it (in load order): the grant
 * with the largest ttl decides (the first on a tie), wrapping as combineWrap says.
 * Undefined when no grant allows it. Shared by `decide` and the reach report.
 */
export function unionOf(
  allowing: readonly Grant[],
): { readonly deciding: Grant; readonly wrap: WrapMode } | undefined {
  const [first, ...rest] = allowing;
  if (first === undefined) return undefined;
  const deciding = rest.reduce((best, g) => (g.ttlSeconds > best.ttlSeconds ? g : best), first);
  return { deciding, wrap: combineWrap(allowing.map((g) => g.wrap)) };
}

/**
 * Compiles every grant's matchers and builds the grant index now, so the first requests
 * after a (re)load do not pay for it. Called once per loaded set.
 */
export function preparePolicySet(set: PolicySet): void {
  for (const grant of set.grants) compileGrant(grant);
  grantIndexOf(set);
}

/** Matching grants in load order; the index narrows the candidates, the matcher decides. */
function matchingGrants(
  set: PolicySet,
  subject: PolicySubject,
  secrets?: readonly string[],
): Grant[] {
  const index = grantIndexOf(set);
  const buckets =
    secrets === undefined
      ? index.candidates(subject)
      : secrets.flatMap((s) => index.candidates(subject, s));
  const matching: number[] = [];
  for (const bucket of buckets) {
    for (const i of bucket) {
      const grant = set.grants[i];
      if (grant !== undefined && matchGrant(grant, subject).matched) matching.push(i);
    }
  }
  // Load order decides ties between equally permissive grants; a grant allowing two
  // requested secrets was found twice.
  matching.sort((a, b) => a - b);
  return matching.flatMap((i, k) => (k > 0 && matching[k - 1] === i ? [] : (set.grants[i] ?? [])));
}

/**
 * All or nothing: allowed only when every requested name is defined and allowed
 * by at least one matching grant. Undefined and ungranted names both land in
 * `denied` (in request order, without repeats) so a denial never reveals whether
 * a secret exists. The deciding grant is the one with the largest ttl, the first
 * in load order on a tie. An empty request is vacuously allowed with nothing in it.
 */
export function decide(set: PolicySet, subject: PolicySubject, names: readonly string[]): Decision {
  // Only grants that allow a requested name can change the answer: the index finds them.
  const grants = matchingGrants(set, subject, [...new Set(names)]);
  const denied: string[] = [];
  const secrets = new Map<string, SecretGrantDecision>();
  for (const name of names) {
    if (secrets.has(name) || denied.includes(name)) continue;
    const secret = set.secrets.get(name);
    const union =
      secret === undefined ? undefined : unionOf(grants.filter((g) => g.allow.includes(name)));
    if (secret === undefined || union === undefined) {
      denied.push(name);
      continue;
    }
    secrets.set(name, {
      secret,
      grant: union.deciding.name,
      ttlSeconds: union.deciding.ttlSeconds,
      wrap: union.wrap,
    });
  }
  if (denied.length > 0) return { allowed: false, denied };
  return { allowed: true, secrets };
}

/** What this subject may fetch and through which grants (for `/v1/whoami`), sorted. */
export function allowedFor(
  set: PolicySet,
  subject: PolicySubject,
): { secrets: string[]; grants: string[] } {
  const grants = matchingGrants(set, subject);
  const secrets = new Set<string>();
  for (const g of grants) {
    for (const name of g.allow) if (set.secrets.has(name)) secrets.add(name);
  }
  return { secrets: [...secrets].sort(), grants: [...new Set(grants.map((g) => g.name))].sort() };
}
