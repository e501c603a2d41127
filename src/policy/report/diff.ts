/**
 * What a policy change does (`zsb policy report --against`): grants, reaches and flags
 * added, removed, widened (admits more identities, more secrets, a longer ttl or plain
 * delivery), narrowed, or changed both ways. Computed from two reports, so the diff speaks
 * the same language as the matrix.
 */
import { formatDuration } from '../duration.js';
import { type Change, combineChanges, type FieldPatterns, fieldChange } from './coverage.js';
import { describeMatch } from './model.js';
import type {
  DiffEntry,
  MatchPatterns,
  PolicyReport,
  ReportDiff,
  ReportGrant,
  ReportReach,
} from './types.js';

/** How each wrap mode may deliver: a mode that allows more ways is wider. */
const DELIVERY: Readonly<Record<string, readonly string[]>> = {
  required: ['wrapped'],
  never: ['plain'],
  optional: ['plain', 'wrapped'],
};

function wrapChange(before: string, after: string): Change {
  return fieldChange(DELIVERY[before] ?? [before], DELIVERY[after] ?? [after]);
}

function ttlChange(before: number, after: number): Change {
  if (after === before) return 'same';
  return after > before ? 'widened' : 'narrowed';
}

function show(patterns: FieldPatterns): string {
  return patterns === undefined ? '(any)' : patterns.join(', ');
}

interface Aspect {
  readonly change: Change;
  readonly detail: string;
}

function matchAspects(fields: readonly string[], b: MatchPatterns, a: MatchPatterns): Aspect[] {
  return fields.flatMap((f) => {
    const change = fieldChange(b[f], a[f]);
    return change === 'same' ? [] : [{ change, detail: `${f}: ${show(b[f])} → ${show(a[f])}` }];
  });
}

function deliveryAspects(
  b: { ttlSeconds: number; wrap: string },
  a: { ttlSeconds: number; wrap: string },
): Aspect[] {
  const aspects: Aspect[] = [];
  const ttl = ttlChange(b.ttlSeconds, a.ttlSeconds);
  if (ttl !== 'same')
    aspects.push({
      change: ttl,
      detail: `ttl: ${formatDuration(b.ttlSeconds)} → ${formatDuration(a.ttlSeconds)}`,
    });
  const wrap = wrapChange(b.wrap, a.wrap);
  if (wrap !== 'same') aspects.push({ change: wrap, detail: `wrap: ${b.wrap} → ${a.wrap}` });
  return aspects;
}

/** One entry from its aspects, or none when nothing moved. */
function entry(
  subject: string,
  aspects: readonly Aspect[],
  link: Pick<DiffEntry, 'identity' | 'secret'>,
): DiffEntry[] {
  const change = combineChanges(aspects.map((a) => a.change));
  if (change === 'same') return [];
  return [{ change, subject, details: aspects.map((a) => `${a.detail} (${a.change})`), ...link }];
}

function grantDiff(
  fields: readonly string[],
  before: ReportGrant,
  after: ReportGrant,
): DiffEntry[] {
  const added = after.allow.filter((s) => !before.allow.includes(s));
  const removed = before.allow.filter((s) => !after.allow.includes(s));
  const aspects = [
    ...matchAspects(fields, before.match, after.match),
    ...(added.length > 0
      ? [{ change: 'widened' as const, detail: `allow: + ${added.join(', ')}` }]
      : []),
    ...(removed.length > 0
      ? [{ change: 'narrowed' as const, detail: `allow: − ${removed.join(', ')}` }]
      : []),
    ...deliveryAspects(before, after),
  ];
  return entry(after.name, aspects, { identity: after.identity });
}

function grants(before: PolicyReport, after: PolicyReport): DiffEntry[] {
  const fields = [...new Set([...before.matchFields, ...after.matchFields])];
  const old = new Map(before.grants.map((g) => [g.name, g]));
  const now = new Set(after.grants.map((g) => g.name));
  return [
    ...after.grants.flatMap((g): DiffEntry[] => {
      const previous = old.get(g.name);
      if (previous === undefined) {
        const details = [`match: ${describeMatch(g.match)}`, `allow: ${g.allow.join(', ')}`];
        return [{ change: 'added', subject: g.name, details, identity: g.identity }];
      }
      return grantDiff(fields, previous, g);
    }),
    ...before.grants
      .filter((g) => !now.has(g.name))
      .map(
        (g): DiffEntry => ({
          change: 'removed',
          subject: g.name,
          details: [`allow: ${g.allow.join(', ')}`],
        }),
      ),
  ];
}

interface KeyedReach {
  readonly reach: ReportReach;
  readonly match: MatchPatterns;
}

function keyedReaches(report: PolicyReport): Map<string, KeyedReach> {
  const rows = new Map(report.identities.map((i) => [i.id, i]));
  const keyed = new Map<string, KeyedReach>();
  for (const reach of report.reaches) {
    const row = rows.get(reach.identity);
    if (row !== undefined)
      keyed.set(`${row.key}\u0000${reach.secret}`, { reach, match: row.match });
  }
  return keyed;
}

/**
 * Reaches are keyed by (identity, secret). A grant whose match changed moves its reach to
 * another row: such a removed and added pair with the same deciding grant and secret is one
 * reach that widened or narrowed, not two unrelated ones.
 */
function reaches(before: PolicyReport, after: PolicyReport): DiffEntry[] {
  const fields = [...new Set([...before.matchFields, ...after.matchFields])];
  const old = keyedReaches(before);
  const now = keyedReaches(after);
  const gone = new Map([...old].filter(([k]) => !now.has(k)));
  // The gone keys by secret and deciding grant, in old order: a moved reach takes the first
  // one left (a lookup, not a scan of every gone reach per new one).
  const movable = new Map<string, string[]>();
  const movedKey = (r: ReportReach) => `${r.secret}\u0000${r.grant}`;
  for (const [key, g] of gone) {
    const keys = movable.get(movedKey(g.reach));
    if (keys === undefined) movable.set(movedKey(g.reach), [key]);
    else keys.push(key);
  }
  const out: DiffEntry[] = [];
  const subject = (k: KeyedReach) => `${describeMatch(k.match)} → ${k.reach.secret}`;
  const link = (k: KeyedReach) => ({ identity: k.reach.identity, secret: k.reach.secret });
  for (const [key, current] of now) {
    let previous = old.get(key);
    if (previous === undefined) {
      const moved = movable.get(movedKey(current.reach))?.shift();
      if (moved !== undefined) {
        previous = gone.get(moved);
        gone.delete(moved);
      }
    }
    if (previous === undefined) {
      const r = current.reach;
      const details = [`by grant ${r.grant}, ttl ${formatDuration(r.ttlSeconds)}, wrap ${r.wrap}`];
      if (r.preMerge) details.push('reachable from pre-merge pipelines');
      out.push({ change: 'added', subject: subject(current), details, ...link(current) });
      continue;
    }
    const aspects = [
      ...matchAspects(fields, previous.match, current.match),
      ...deliveryAspects(previous.reach, current.reach),
    ];
    if (!previous.reach.preMerge && current.reach.preMerge) {
      aspects.push({ change: 'widened', detail: 'now reachable from pre-merge pipelines' });
    } else if (previous.reach.preMerge && !current.reach.preMerge) {
      aspects.push({ change: 'narrowed', detail: 'no longer reachable from pre-merge pipelines' });
    }
    out.push(...entry(subject(current), aspects, link(current)));
  }
  for (const [, g] of gone) {
    const details = [
      `was by grant ${g.reach.grant}, ttl ${formatDuration(g.reach.ttlSeconds)}, wrap ${g.reach.wrap}`,
    ];
    out.push({ change: 'removed', subject: subject(g), details, secret: g.reach.secret });
  }
  return out;
}

function flags(before: PolicyReport, after: PolicyReport): DiffEntry[] {
  const keyed = (r: PolicyReport) =>
    new Map(
      r.grants.flatMap((g) => g.flags.map((f) => [`${f.grant}: ${f.kind}`, { f, g }] as const)),
    );
  const old = keyed(before);
  const now = keyed(after);
  return [
    ...[...now]
      .filter(([k]) => !old.has(k))
      .map(
        ([k, { f, g }]): DiffEntry => ({
          change: 'added',
          subject: k,
          details: [`${f.message} [${f.location}]`],
          identity: g.identity,
        }),
      ),
    ...[...old]
      .filter(([k]) => !now.has(k))
      .map(([k, { f }]): DiffEntry => ({ change: 'removed', subject: k, details: [f.message] })),
  ];
}

export function diffReports(
  before: PolicyReport,
  after: PolicyReport,
  against: string,
): ReportDiff {
  return {
    against,
    grants: grants(before, after),
    reaches: reaches(before, after),
    flags: flags(before, after),
  };
}
