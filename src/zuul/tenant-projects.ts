/**
 * zuul-web's project list of one tenant (`GET {zuul}/api/tenant/{tenant}/projects`), for
 * `zsb policy check|explain --zuul-url`: which projects are config projects. Each entry is
 * `{"name", "canonical_name", "connection_name", "type"}` with `type` `config` or
 * `untrusted` (shared/design/real-zuul.md).
 *
 * A narrow client: it takes a fetch function, bounds time and size, refuses redirects and
 * anything that is not that shape. zuul-web answers unknown paths with 200 and its
 * dashboard HTML (a wrong base URL), so a non-JSON answer is an error that says so.
 */
import { z } from 'zod';
import { readCapped } from '../http/read-capped.js';

export interface ZuulProject {
  readonly name: string;
  /** `host/org/repo`: the form `sub` and the policies use. */
  readonly canonicalName: string;
  readonly connectionName: string;
  /** `config` (trusted) or `untrusted`; other values are kept as Zuul sent them. */
  readonly type: string;
}

export interface TenantProjectsOptions {
  readonly fetchImpl?: typeof fetch;
  readonly timeoutMs?: number;
  readonly maxBytes?: number;
  /** Sent as `Authorization` (a zuul-web auth token for tenants that restrict reads). */
  readonly authorization?: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** A tenant with thousands of projects is a few hundred KiB. */
const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;
const MAX_PROJECTS = 20_000;

const ProjectListSchema = z
  .array(
    z.object({
      name: z.string().max(1024),
      canonical_name: z.string().min(1).max(1024),
      connection_name: z.string().max(1024),
      type: z.string().max(64),
    }),
  )
  .max(MAX_PROJECTS);

export class ZuulWebError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ZuulWebError';
  }
}

/** `{zuul}/api/tenant/{tenant}/projects`; the tenant is one path segment. */
export function tenantProjectsUrl(zuulUrl: string, tenant: string): string {
  return `${zuulUrl.replace(/\/+$/, '')}/api/tenant/${encodeURIComponent(tenant)}/projects`;
}

export async function fetchTenantProjects(
  zuulUrl: string,
  tenant: string,
  options: TenantProjectsOptions = {},
): Promise<ZuulProject[]> {
  const url = tenantProjectsUrl(zuulUrl, tenant);
  const fetchImpl = options.fetchImpl ?? globalThis.fetch;
  let response: Response;
  try {
    response = await fetchImpl(url, {
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      headers: {
        accept: 'application/json',
        ...(options.authorization === undefined ? {} : { authorization: options.authorization }),
      },
    });
  } catch (error) {
    const timedOut = error instanceof Error && error.name === 'TimeoutError';
    throw new ZuulWebError(`${url}: ${timedOut ? 'no answer in time' : 'not reachable'}`);
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    const hint = response.status === 404 ? ' (unknown tenant?)' : '';
    throw new ZuulWebError(`${url}: HTTP ${response.status}${hint}`);
  }
  let body: unknown;
  try {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    const bytes = await readCapped(response, maxBytes);
    if (bytes === undefined) throw new ZuulWebError(`${url}: answer larger than ${maxBytes} bytes`);
    body = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    if (error instanceof ZuulWebError) throw error;
    const type = response.headers.get('content-type')?.split(';')[0] ?? 'no content type';
    throw new ZuulWebError(
      `${url}: not JSON (${type}); is the URL zuul-web's root? It answers unknown paths with its dashboard`,
    );
  }
  const parsed = ProjectListSchema.safeParse(body);
  if (!parsed.success) throw new ZuulWebError(`${url}: not a Zuul project list`);
  return parsed.data.map((p) => ({
    name: p.name,
    canonicalName: p.canonical_name,
    connectionName: p.connection_name,
    type: p.type,
  }));
}

/** The canonical names of a tenant's config projects. */
export async function fetchConfigProjects(
  zuulUrl: string,
  tenant: string,
  options: TenantProjectsOptions = {},
): Promise<Set<string>> {
  const projects = await fetchTenantProjects(zuulUrl, tenant, options);
  return new Set(projects.filter((p) => p.type === 'config').map((p) => p.canonicalName));
}
