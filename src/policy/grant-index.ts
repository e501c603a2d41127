/**
 * An index over a policy set's grants so a decision looks at the few grants that can
 * matter instead of all of them. A decision is always about named secrets, so grants are
 * first keyed by each secret they allow; within that, by their literal `tenant` and
 * `project` values (the fields nearly every real grant pins). A grant whose tenant or
 * project is absent or a glob goes into the wildcard bucket of that level. Candidates are
 * then checked with the full matcher, so the index only narrows the search and can never
 * change a decision. Built once per (immutable) policy set.
 */
import type { TimeSlices } from './time-slices.js';
import type { Grant, PolicySet, PolicySubject } from './types.js';

/** The only fields the index looks at. */
type IndexedFields = Pick<PolicySubject, 'tenant' | 'project'>;

interface ProjectLevel {
  readonly byProject: Map<string, number[]>;
  readonly anyProject: number[];
}

interface TenantLevel {
  readonly byTenant: Map<string, ProjectLevel>;
  readonly anyTenant: ProjectLevel;
}

export interface GrantIndex {
  /**
   * Buckets of indexes (into set.grants) of grants that may match `subject`; with
   * `secret`, only grants that allow that secret. A grant is in at most one bucket for
   * one call; each bucket is in load order, the buckets together are not.
   */
  candidates(subject: IndexedFields, secret?: string): readonly (readonly number[])[];
}

function literals(patterns: readonly string[] | undefined): readonly string[] | undefined {
  if (patterns === undefined || patterns.some((p) => p.includes('*'))) return undefined;
  return patterns;
}

/** The distinct values of a list; most lists have one value, which needs no Set. */
function distinct(values: readonly string[]): readonly string[] {
  return values.length < 2 ? values : [...new Set(values)];
}

function newProjectLevel(): ProjectLevel {
  return { byProject: new Map(), anyProject: [] };
}

function newTenantLevel(): TenantLevel {
  return { byTenant: new Map(), anyTenant: newProjectLevel() };
}

function addToProjectLevel(level: ProjectLevel, grant: Grant, index: number): void {
  const projects = literals(grant.match.project);
  if (projects === undefined) {
    level.anyProject.push(index);
    return;
  }
  for (const project of distinct(projects)) {
    const bucket = level.byProject.get(project);
    if (bucket) bucket.push(index);
    else level.byProject.set(project, [index]);
  }
}

function addToTenantLevel(level: TenantLevel, grant: Grant, index: number): void {
  const tenants = literals(grant.match.tenant);
  if (tenants === undefined) {
    addToProjectLevel(level.anyTenant, grant, index);
    return;
  }
  for (const tenant of distinct(tenants)) {
    let projects = level.byTenant.get(tenant);
    if (projects === undefined) {
      projects = newProjectLevel();
      level.byTenant.set(tenant, projects);
    }
    addToProjectLevel(projects, grant, index);
  }
}

const EMPTY: readonly number[] = [];
const NONE: readonly (readonly number[])[] = [];

function lookup(level: TenantLevel, subject: IndexedFields): readonly (readonly number[])[] {
  const tenant = level.byTenant.get(subject.tenant);
  return [
    tenant?.byProject.get(subject.project) ?? EMPTY,
    tenant?.anyProject ?? EMPTY,
    level.anyTenant.byProject.get(subject.project) ?? EMPTY,
    level.anyTenant.anyProject,
  ];
}

/** Adds grants one at a time, so the index can be built in slices (prepareGrantIndex). */
class GrantIndexBuilder {
  private readonly all = newTenantLevel();
  private readonly bySecret = new Map<string, TenantLevel>();

  add(grant: Grant, index: number): void {
    addToTenantLevel(this.all, grant, index);
    for (const secret of distinct(grant.allow)) {
      let level = this.bySecret.get(secret);
      if (level === undefined) {
        level = newTenantLevel();
        this.bySecret.set(secret, level);
      }
      addToTenantLevel(level, grant, index);
    }
  }

  index(): GrantIndex {
    const { all, bySecret } = this;
    return {
      candidates(subject, secret) {
        if (secret === undefined) return lookup(all, subject);
        const level = bySecret.get(secret);
        return level === undefined ? NONE : lookup(level, subject);
      },
    };
  }
}

export function buildGrantIndex(grants: readonly Grant[]): GrantIndex {
  const builder = new GrantIndexBuilder();
  for (let i = 0; i < grants.length; i++) builder.add(grants[i] as Grant, i);
  return builder.index();
}

const indexes = new WeakMap<PolicySet, GrantIndex>();

/** The index of a set, built on first use and released with the set. */
export function grantIndexOf(set: PolicySet): GrantIndex {
  let index = indexes.get(set);
  if (index === undefined) {
    index = buildGrantIndex(set.grants);
    indexes.set(set, index);
  }
  return index;
}

/**
 * Builds the index of a set not yet serving in slices of the serving thread (a reload,
 * ADR 0018); the set is published only after this, so no decision sees half an index.
 */
export async function prepareGrantIndex(set: PolicySet, slices: TimeSlices): Promise<void> {
  if (indexes.has(set)) return;
  const builder = new GrantIndexBuilder();
  for (let i = 0; i < set.grants.length; i++) {
    builder.add(set.grants[i] as Grant, i);
    if ((i & 15) === 15 && slices.due()) await slices.next();
  }
  indexes.set(set, builder.index());
}
