/**
 * The policy decision: pure, allow-only, default deny (policy.md "Matching").
 * Runs on every request, so match patterns are compiled once per grant object
 * (a PolicySet is immutable and swapped whole on reload, so the cache can never
 * go stale and is released together with the set).
 */
import { compileGlob } from './glob.js';
import { grantIndexOf, prepareGrantIndex } from './grant-index.js';
import type { TimeSlices } from './time-slices.js';
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

/**
 * Matchers by pattern: a matcher is a pure function of its pattern, and most patterns
 * recur across grants (`deploy-*`, `post`, a tenant's project glob), so thousands of
 * grants share a few matchers instead of each compiling its own (less memory, and a
 * reload allocates less on the serving thread). Bounded: cleared when full.
 */
const MAX_SHARED_MATCHERS = 20_000;
const sharedMatchers = new Map<string, Matcher>();

function matcherOf(pattern: string): Matcher {
  let matcher = sharedMatchers.get(pattern);
  if (matcher === undefined) {
    const glob = compileGlob(pattern);
    matcher = glob.ok ? glob.match : NEVER;
    if (sharedMatchers.size >= MAX_SHARED_MATCHERS) sharedMatchers.clear();
    sharedMatchers.set(pattern, matcher);
  }
  return matcher;
}

function compileGrant(grant: Grant): CompiledMatch {
  const cached = compiledGrants.get(grant);
  if (cached !== undefined) return cached;
  const compiled: [MatchField, Matcher][] = [];
  for (const field of MATCH_FIELDS) {
    const patterns = grant.match[field];
    if (patterns === undefined) continue;
    const matchers = patterns.map(matcherOf);
    // One pattern (the usual case) is matched directly, without a closure over a list.
    const [only] = matchers;
    compiled.push([
      field,
      matchers.length === 1 && only !== undefined
        ? only
        : (value) => matchers.some((m) => m(value)),
    ]);
  }
  compiledGrants.set(grant, compiled);
  return compiled;
}

/** Whether the grant's patterns for one field admit `value` (an absent field admits anything). */
export function grantAdmits(grant: Grant, field: MatchField, value: string): boolean {
  const entry = compileGrant(grant).find(([listed]) => listed === field);
  return entry === undefined || entry[1](value);
}

// The answers of matchGrant are shared constants: a decision allocates none of them.
const MATCHED: GrantMatch = Object.freeze({ matched: true });
const FAILED = new Map<MatchField, GrantMatch>(
  MATCH_FIELDS.map((field) => [field, Object.freeze({ matched: false, failedField: field })]),
);

/**
 * Whether every listed field of the grant matches the subject. An absent field
 * matches anything (so an absent `issuer` means any configured issuer: only
 * configured issuers ever produce a subject). Fields are tried in MATCH_FIELDS
 * order, so the reported field is stable for `explain`.
 */
export function matchGrant(grant: Grant, subject: PolicySubject): GrantMatch {
  const compiled = compileGrant(grant);
  for (let i = 0; i < compiled.length; i++) {
    const [field, matches] = compiled[i] as readonly [MatchField, Matcher];
    // A build fact the binding did not supply matches nothing (fail closed).
    const value = subject[field];
    if (value === undefined || !matches(value)) {
      return FAILED.get(field) ?? { matched: false, failedField: field };
    }
  }
  return MATCHED;
}

/**
 * Wrapping of a secret allowed by several grants: `required` only if every
 * allowing grant requires it (policy.md), `never` only if every one forbids it;
 * any other mix (an `optional` grant, or `required` next to `never`) leaves the
 * choice to the job, as the most permissive reading of the union.
 */
function joinWrap(sofar: WrapMode | undefined, mode: WrapMode): WrapMode {
  // One grant at a time, so decide() combines the allowing grants without a list.
  return sofar === undefined || sofar === mode ? mode : 'optional';
}

/**
 * The union rule for secret `name` over the grants that allow it (in load order): the
 * grant with the largest ttl decides (the first on a tie), wrapping as joinWrap combines
 * them. Undefined when none allows it. Shared by `decide` and the reach report; a loop,
 * not a filtered list, so that a decision allocates no list.
 */
export function unionOf(
  grants: readonly Grant[],
  name: string,
): { readonly deciding: Grant; readonly wrap: WrapMode } | undefined {
  let deciding: Grant | undefined;
  let wrap: WrapMode | undefined;
  for (let k = 0; k < grants.length; k++) {
    const g = grants[k] as Grant;
    if (!g.allow.includes(name)) continue;
    if (deciding === undefined || g.ttlSeconds > deciding.ttlSeconds) deciding = g;
    wrap = joinWrap(wrap, g.wrap);
  }
  return deciding === undefined || wrap === undefined ? undefined : { deciding, wrap };
}

/**
 * Compiles every grant's matchers and builds the grant index now, so the first requests
 * after a (re)load do not pay for it. Called once per loaded set.
 */
export function preparePolicySet(set: PolicySet): void {
  for (const grant of set.grants) compileGrant(grant);
  grantIndexOf(set);
}

/**
 * preparePolicySet in slices of the serving thread, for a set that is not serving yet
 * (a reload, ADR 0018). Grants of unchanged files are the same objects as before and
 * keep their compiled matchers; only the index is built anew.
 */
export async function preparePolicySetInSlices(set: PolicySet, slices: TimeSlices): Promise<void> {
  for (let i = 0; i < set.grants.length; i++) {
    compileGrant(set.grants[i] as Grant);
    if ((i & 15) === 15 && slices.due()) await slices.next();
  }
  await prepareGrantIndex(set, slices);
}

/** Adds the indexes of the matching grants of `buckets` to `matching`. */
function addMatching(
  set: PolicySet,
  subject: PolicySubject,
  buckets: readonly (readonly number[])[],
  matching: number[],
): void {
  for (let b = 0; b < buckets.length; b++) {
    const bucket = buckets[b] as readonly number[];
    for (let k = 0; k < bucket.length; k++) {
      const i = bucket[k] as number;
      const grant = set.grants[i];
      if (grant !== undefined && matchGrant(grant, subject).matched) matching.push(i);
    }
  }
}

/** Matching grants in load order; the index narrows the candidates, the matcher decides. */
function matchingGrants(
  set: PolicySet,
  subject: PolicySubject,
  secrets?: readonly string[],
): Grant[] {
  const index = grantIndexOf(set);
  const matching: number[] = [];
  if (secrets === undefined) addMatching(set, subject, index.candidates(subject), matching);
  else for (const s of secrets) addMatching(set, subject, index.candidates(subject, s), matching);
  // Load order decides ties between equally permissive grants; a grant allowing two
  // requested secrets was found twice.
  if (matching.length > 1) matching.sort((a, b) => a - b);
  const grants: Grant[] = [];
  for (let k = 0; k < matching.length; k++) {
    const i = matching[k] as number;
    const grant = set.grants[i];
    if (grant !== undefined && (k === 0 || matching[k - 1] !== i)) grants.push(grant);
  }
  return grants;
}

/**
 * All or nothing: allowed only when every requested name is defined and allowed
 * by at least one matching grant. Undefined and ungranted names both land in
 * `denied` (in request order, without repeats) so a denial never reveals whether
 * a secret exists. The deciding grant is the one with the largest ttl, the first
 * in load order on a tie; wrapping is joinWrap's union of the allowing grants (unionOf).
 * An empty request is vacuously allowed with nothing in it. Runs on every request,
 * so it walks the matching grants once per name instead of building lists.
 */
export function decide(set: PolicySet, subject: PolicySubject, names: readonly string[]): Decision {
  // Only grants that allow a requested name can change the answer: the index finds them.
  const grants = matchingGrants(set, subject, names.length === 1 ? names : [...new Set(names)]);
  const denied: string[] = [];
  const secrets = new Map<string, SecretGrantDecision>();
  for (const name of names) {
    if (secrets.has(name) || denied.includes(name)) continue;
    const secret = set.secrets.get(name);
    const union = secret === undefined ? undefined : unionOf(grants, name);
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
