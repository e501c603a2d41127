/**
 * Short project names to canonical ones, per tenant, from zuul-web's project list. Zuul's
 * build records name the project by its short name (`org/repo`, the SQL reporter writes
 * `project.name`); `sub` and the policies use the canonical `host/org/repo`. A short name
 * that two connections share in one tenant is ambiguous and maps to nothing (fail closed:
 * a grant on `buildProject` then does not match).
 *
 * A tenant's list is kept `LIST_TTL_MS` and fetched again at once for a name it does not
 * hold (a project added since), at most once per `MISS_SPACING_MS`, one fetch at a time per
 * tenant. A failed fetch keeps serving the previous list while it is younger than
 * `STALE_LIMIT_MS`.
 */
import { fetchTenantProjects, type TenantProjectsOptions } from './tenant-projects.js';

const LIST_TTL_MS = 5 * 60 * 1000;
const MISS_SPACING_MS = 10 * 1000;
const STALE_LIMIT_MS = 60 * 60 * 1000;

interface TenantList {
  /** Short name → canonical names (more than one: ambiguous). */
  readonly names: ReadonlyMap<string, readonly string[]>;
  readonly fetchedAt: number;
}

/** The list's size bound is fetchTenantProjects' own (4 MiB), not a build record's. */
export interface ProjectNamesOptions extends Omit<TenantProjectsOptions, 'maxBytes'> {
  readonly now?: () => number;
}

export class TenantProjectNames {
  readonly #webUrl: string;
  readonly #options: ProjectNamesOptions;
  readonly #now: () => number;
  readonly #lists = new Map<string, TenantList>();
  readonly #inFlight = new Map<string, Promise<TenantList>>();
  readonly #lastFetchAt = new Map<string, number>();

  constructor(webUrl: string, options: ProjectNamesOptions) {
    this.#webUrl = webUrl;
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The canonical name of `shortName` in `tenant`, undefined when unknown or ambiguous. */
  async canonical(tenant: string, shortName: string): Promise<string | undefined> {
    let list = this.#lists.get(tenant);
    const now = this.#now();
    const lastFetch = this.#lastFetchAt.get(tenant) ?? Number.NEGATIVE_INFINITY;
    const expired = list === undefined || now - list.fetchedAt >= LIST_TTL_MS;
    const missing = list !== undefined && !list.names.has(shortName);
    if (expired || (missing && now - lastFetch >= MISS_SPACING_MS)) {
      try {
        list = await this.#fetch(tenant);
      } catch (error) {
        if (list === undefined || now - list.fetchedAt >= STALE_LIMIT_MS) throw error;
      }
    }
    const names = list?.names.get(shortName);
    return names?.length === 1 ? names[0] : undefined;
  }

  #fetch(tenant: string): Promise<TenantList> {
    const running = this.#inFlight.get(tenant);
    if (running !== undefined) return running;
    this.#lastFetchAt.set(tenant, this.#now());
    const pending = fetchTenantProjects(this.#webUrl, tenant, this.#options)
      .then((projects) => {
        const names = new Map<string, string[]>();
        for (const p of projects)
          names.set(p.name, [...(names.get(p.name) ?? []), p.canonicalName]);
        const list = { names, fetchedAt: this.#now() };
        this.#lists.set(tenant, list);
        return list;
      })
      .finally(() => this.#inFlight.delete(tenant));
    this.#inFlight.set(tenant, pending);
    return pending;
  }
}
