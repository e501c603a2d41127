/**
 * The `zuul:` section of a policy file: facts about the Zuul tenants that policy review
 * needs and Zuul's tokens do not carry, today which projects are config projects.
 *
 * ```yaml
 * zuul:
 *   configProjects:
 *     scs: [github.com/SovereignCloudStack/zuul-config]
 * ```
 *
 * Several files may have one; their lists are merged. The broker loads the section (so a
 * policy directory is valid for `serve` and for `policy check` alike) but never decides
 * with it: it only feeds the `config-project-identity` warning.
 */
import { z } from 'zod';
import { hasControlCharacter, showName as show } from './characters.js';
import type { DataPath } from './source.js';
import type { ZuulTenantFacts } from './types.js';

export const ZuulSectionSchema = z
  .object({
    configProjects: z
      .record(z.string(), z.array(z.string()).min(1, 'must list at least one project'))
      .optional(),
  })
  .strict();
export type ZuulSectionData = z.infer<typeof ZuulSectionSchema>;

function tenantProblem(tenant: string): string | undefined {
  if (tenant === '' || tenant.includes('/') || hasControlCharacter(tenant)) {
    return `tenant '${show(tenant)}' is not a Zuul tenant name`;
  }
  return undefined;
}

/** A canonical project name as Zuul writes it: `host/org/repo`, literal, no empty segment. */
function projectProblem(project: string): string | undefined {
  if (hasControlCharacter(project) || project.includes('*')) {
    return `'${show(project)}' is not a canonical project name (literal host/org/repo, no patterns)`;
  }
  const segments = project.split('/');
  if (segments.length < 2 || segments.some((s) => s === '' || s === '.' || s === '..')) {
    return `'${show(project)}' is not a canonical project name (host/org/repo)`;
  }
  return undefined;
}

/** Checks one file's section; `report` gets each problem at its data path. */
export function readZuulSection(
  data: ZuulSectionData,
  report: (path: DataPath, problem: string) => void,
): Map<string, Set<string>> {
  const configProjects = new Map<string, Set<string>>();
  for (const [tenant, projects] of Object.entries(data.configProjects ?? {})) {
    const bad = tenantProblem(tenant);
    if (bad !== undefined) {
      report(['zuul', 'configProjects', tenant], bad);
      continue;
    }
    // Each tenant is one key of the file's section; files are merged by mergeZuulFacts.
    const list = new Set<string>();
    projects.forEach((project, i) => {
      const problem = projectProblem(project);
      if (problem === undefined) list.add(project);
      else report(['zuul', 'configProjects', tenant, i], problem);
    });
    configProjects.set(tenant, list);
  }
  return configProjects;
}

/** The union of several sources of facts (files of the directory, zuul-web). */
export function mergeZuulFacts(
  ...sources: ReadonlyArray<ReadonlyMap<string, ReadonlySet<string>> | undefined>
): ZuulTenantFacts | undefined {
  const merged = new Map<string, Set<string>>();
  for (const source of sources) {
    for (const [tenant, projects] of source ?? []) {
      const list = merged.get(tenant) ?? new Set<string>();
      for (const project of projects) list.add(project);
      merged.set(tenant, list);
    }
  }
  return merged.size === 0 ? undefined : { configProjects: merged };
}
