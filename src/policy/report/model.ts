/**
 * Builds the reach report (types.ts) from a loaded policy set: one matrix row per distinct
 * grant match (an identity class), one column per secret, and a cell wherever a grant whose
 * match covers the row allows the secret. Cells follow the broker's union rule (decide.ts):
 * the largest ttl decides, wrapping is required only when every allowing grant requires it.
 * Flags reuse the policy warnings (explain.ts, config-projects.ts) and add two the review
 * asks for: globs, and grants on a config project's shared token secret.
 *
 * A row stands for every identity its match admits; grants that overlap it only partly are
 * not folded in, so a cell is what every identity of the row gets at least.
 */
import { reachedConfigProjects } from '../config-projects.js';
import { unionOf } from '../decide.js';
import { formatDuration } from '../duration.js';
import { grantWarnings } from '../explain.js';
import { grantIndexOf } from '../grant-index.js';
import { nextCronRun } from '../schedule.js';
import type {
  Grant,
  PolicySet,
  Rotation,
  SecretSource,
  SourceLocation,
  ZuulTenantFacts,
} from '../types.js';
import { MATCH_FIELDS } from '../types.js';
import { fieldCovers } from './coverage.js';
import type {
  MatchPatterns,
  PolicyReport,
  ReportFlag,
  ReportGrant,
  ReportIdentity,
  ReportReach,
  ReportRotation,
  ReportSecret,
} from './types.js';

/** What the broker's OpenBao records about a rotation (`RotationService.status()`). */
export interface RecordedRotation {
  readonly name: string;
  /** How the broker describes the schedule: used for rotations no policy file declares. */
  readonly schedule?: string;
  readonly lastSuccess?: string;
  readonly lastOutcome?: string;
  readonly nextRun: string;
  readonly step?: string;
  readonly failures: number;
  readonly lastError?: { readonly at: string };
}

export interface ReportOptions {
  /** How the policy directory is named in the report (a path or `git-ref:dir`). */
  readonly dir: string;
  readonly now: Date;
  /** Config project facts (the `zuul:` section, maybe with zuul-web's list). */
  readonly zuul?: ZuulTenantFacts;
  /** With `--status`: the recorded state of every rotation. */
  readonly recorded?: readonly RecordedRotation[];
}

function at(location: SourceLocation): string {
  return `${location.file}:${location.line}:${location.column}`;
}

function matchOf(grant: Grant): MatchPatterns {
  const match: Record<string, readonly string[]> = {};
  for (const field of MATCH_FIELDS) {
    const patterns = grant.match[field];
    if (patterns !== undefined) match[field] = patterns;
  }
  return match;
}

/** `tenant=scs project=a|b pipeline=post`: a row's match on one line. */
export function describeMatch(match: MatchPatterns): string {
  return MATCH_FIELDS.filter((f) => match[f] !== undefined)
    .map((f) => `${f}=${(match[f] ?? []).join('|')}`)
    .join(' ');
}

/** The same identity class whatever the order of fields or patterns. */
export function identityKey(match: MatchPatterns): string {
  return JSON.stringify(
    MATCH_FIELDS.filter((f) => match[f] !== undefined).map((f) => [
      f,
      [...(match[f] ?? [])].sort(),
    ]),
  );
}

function grantFlags(grant: Grant, set: PolicySet, zuul: ZuulTenantFacts | undefined): ReportFlag[] {
  const flags: ReportFlag[] = grantWarnings(grant, zuul, set.secrets).map((w) => ({
    kind: w.kind,
    grant: w.grant,
    message: w.message,
    location: at(w.location),
  }));
  const globs = MATCH_FIELDS.flatMap((field) =>
    (grant.match[field] ?? []).filter((p) => p.includes('*')).map((p) => `${field} '${p}'`),
  );
  if (globs.length > 0) {
    const first = MATCH_FIELDS.find((f) => grant.match[f]?.some((p) => p.includes('*')));
    flags.push({
      kind: 'broad-glob',
      grant: grant.name,
      message: `${globs.join(', ')}: a pattern admits every matching name, including ones added later`,
      location: at((first && grant.matchLocations?.[first]) || grant.location),
    });
  }
  const shared = zuul === undefined ? [] : reachedConfigProjects(grant, zuul);
  if (shared.length > 0) {
    flags.push({
      kind: 'shared-token-secret',
      grant: grant.name,
      message: `can match the token secret of config project ${shared.join(', ')}, which every job using it holds for every project`,
      location: at(grant.matchLocations?.project ?? grant.location),
    });
  }
  return flags;
}

export function describeSource(source: SecretSource): string {
  switch (source.kind) {
    case 'kv':
      return `kv ${source.mount}/${source.path}${source.keys ? ` keys ${source.keys.join(', ')}` : ''}`;
    case 'database':
      return `database ${source.mount} role ${source.role}`;
    case 'pki':
      return `pki ${source.mount} role ${source.role} cn ${source.commonName}`;
    case 'token':
      return `token policies ${source.policies.join(', ')}`;
    default:
      return (source as { kind: string }).kind;
  }
}

function describeRotation(rotation: Rotation): { schedule: string; target: string } {
  const parts = [
    rotation.schedule !== undefined
      ? `cron ${rotation.schedule} (UTC)`
      : `every ${formatDuration(rotation.everySeconds ?? 0)}`,
  ];
  if (rotation.jitterSeconds) parts.push(`jitter up to ${formatDuration(rotation.jitterSeconds)}`);
  if (rotation.window) {
    const hhmm = (m: number) =>
      `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
    parts.push(
      `window ${hhmm(rotation.window.startMinute)}-${hhmm(rotation.window.endMinute)} UTC`,
    );
  }
  const t = rotation.target;
  const target =
    t.kind === 'postgres'
      ? `postgres login (admin ${t.admin}${t.users ? `, users ${t.users.join('/')}` : ''})`
      : t.kind === 'static-role'
        ? `static role ${t.mount}/${t.role}`
        : 'kv';
  return { schedule: parts.join(', '), target };
}

function recordedStatus(r: RecordedRotation): NonNullable<ReportRotation['status']> {
  return {
    ...(r.lastSuccess ? { lastSuccess: r.lastSuccess } : {}),
    ...(r.lastOutcome ? { lastOutcome: r.lastOutcome } : {}),
    nextRun: r.nextRun,
    ...(r.step ? { step: r.step } : {}),
    failures: r.failures,
    // The error's message stays in `zsb rotation status`: the page shows only when.
    ...(r.lastError ? { lastErrorAt: r.lastError.at } : {}),
  };
}

function rotations(set: PolicySet, options: ReportOptions): ReportRotation[] {
  const recorded = new Map((options.recorded ?? []).map((r) => [r.name, r]));
  const declared = set.rotations.map((rotation): ReportRotation => {
    const { schedule, target } = describeRotation(rotation);
    const next =
      rotation.schedule === undefined ? undefined : nextCronRun(rotation.schedule, options.now);
    const r = recorded.get(rotation.name);
    return {
      name: rotation.name,
      ...(rotation.secret === undefined ? {} : { secret: rotation.secret }),
      schedule,
      target,
      location: at(rotation.location),
      ...(next === undefined ? {} : { nextDeclared: next.toISOString() }),
      ...(r === undefined ? {} : { status: recordedStatus(r) }),
    };
  });
  // What the broker runs that these files do not declare: its own secret-id rotation (from
  // its configuration), or rotations of the policy directory its configuration names.
  const names = new Set(set.rotations.map((r) => r.name));
  const configured = [...recorded.values()]
    .filter((r) => !names.has(r.name))
    .map(
      (r): ReportRotation => ({
        name: r.name,
        schedule: r.schedule ?? 'from the broker configuration',
        target: 'not in these policy files',
        location: '(recorded by the broker)',
        status: recordedStatus(r),
      }),
    );
  return [...declared, ...configured];
}

/**
 * The grants that can cover a row, in load order, from the decision index (grant-index.ts)
 * asked with the row's first tenant and project: a covering grant admits both, so it is in
 * their literal buckets or a wildcard one. A row's glob or absent field is asked as `*`,
 * never a literal key, which leaves the wildcard buckets, as coverage requires. So a large
 * set is not rows × grants.
 */
function candidates(set: PolicySet, match: MatchPatterns): Grant[] {
  const buckets = grantIndexOf(set).candidates({
    tenant: match.tenant?.[0] ?? '*',
    project: match.project?.[0] ?? '*',
  });
  return buckets
    .flat()
    .sort((a, b) => a - b)
    .flatMap((i) => set.grants[i] ?? []);
}

function reachesOf(set: PolicySet, identities: readonly ReportIdentity[]): ReportReach[] {
  const reaches: ReportReach[] = [];
  for (const row of identities) {
    const covering = candidates(set, row.match).filter((g) =>
      MATCH_FIELDS.every((f) => fieldCovers(g.match[f], row.match[f])),
    );
    const secrets = [...new Set(covering.flatMap((g) => g.allow))].filter((s) =>
      set.secrets.has(s),
    );
    for (const secret of secrets.sort()) {
      const allowing = covering.filter((g) => g.allow.includes(secret));
      const union = unionOf(allowing, secret);
      if (union === undefined) continue;
      reaches.push({
        identity: row.id,
        secret,
        grant: union.deciding.name,
        grants: allowing.map((g) => g.name),
        ttlSeconds: union.deciding.ttlSeconds,
        wrap: union.wrap,
        inherited: !allowing.some((g) => row.grants.includes(g.name)),
        preMerge: row.preMerge,
      });
    }
  }
  return reaches;
}

export function buildReport(set: PolicySet, options: ReportOptions): PolicyReport {
  const zuul = options.zuul ?? set.zuul;
  const rows = new Map<string, { id: string; match: MatchPatterns; grants: ReportGrant[] }>();
  const grants: ReportGrant[] = set.grants.map((grant) => {
    const match = matchOf(grant);
    const key = identityKey(match);
    let row = rows.get(key);
    if (row === undefined) {
      row = { id: `id-${rows.size + 1}`, match, grants: [] };
      rows.set(key, row);
    }
    const entry: ReportGrant = {
      name: grant.name,
      location: at(grant.location),
      match,
      allow: grant.allow,
      ttlSeconds: grant.ttlSeconds,
      wrap: grant.wrap,
      identity: row.id,
      flags: grantFlags(grant, set, zuul),
    };
    row.grants.push(entry);
    return entry;
  });
  const identities: ReportIdentity[] = [...rows].map(([key, row]) => {
    const flags = row.grants.flatMap((g) => g.flags);
    return {
      id: row.id,
      key,
      match: row.match,
      grants: row.grants.map((g) => g.name),
      flags,
      preMerge: flags.some((f) => f.kind === 'pre-merge'),
    };
  });
  const rotated = new Map(set.rotations.flatMap((r) => (r.secret ? [[r.secret, r.name]] : [])));
  const secrets: ReportSecret[] = [...set.secrets.values()]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((s) => {
      const rotation = rotated.get(s.name);
      return {
        name: s.name,
        kind: s.source.kind,
        source: describeSource(s.source),
        location: at(s.location),
        ...(rotation === undefined ? {} : { rotation }),
      };
    });
  return {
    version: 1,
    generatedAt: options.now.toISOString(),
    policies: { dir: options.dir, files: set.files },
    matchFields: [...MATCH_FIELDS],
    secrets,
    grants,
    identities,
    reaches: reachesOf(set, identities),
    rotations: rotations(set, options),
    rotationSource: options.recorded === undefined ? 'declared' : 'openbao',
  };
}
