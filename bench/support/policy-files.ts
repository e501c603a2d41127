/** The benchmarks' large policy set: 10,000 grants in 21 files by default. */

export const GRANTS_PER_FILE = 500;
export const TENANTS = 100;

/**
 * A realistic mix: per-project grants, per-tenant globs, a few installation-wide grants,
 * spread over files of 500 grants as a large installation would (each file is capped).
 */
export function policyFiles(count: number): { name: string; text: string }[] {
  const secrets = ['secrets:'];
  for (let t = 0; t < TENANTS; t++)
    secrets.push(`  tenant-${t}-secret: { kv: { mount: secret, path: "zuul/t${t}/{project}/s" } }`);
  secrets.push('  shared: { kv: { mount: secret, path: zuul/shared } }');
  const files = [{ name: 'secrets.yaml', text: `${secrets.join('\n')}\n` }];
  let lines: string[] = [];
  for (let i = 0; i < count; i++) {
    if (i % GRANTS_PER_FILE === 0) {
      if (lines.length > 0)
        files.push({ name: `grants-${files.length}.yaml`, text: `${lines.join('\n')}\n` });
      lines = ['grants:'];
    }
    const t = i % TENANTS;
    if (i < TENANTS * 2) {
      // Two tenant-wide grants per tenant, by project glob.
      lines.push(
        `  - name: g${i}`,
        `    match: { tenant: t${t}, project: "github.com/org${t}/**", pipeline: [post, promote] }`,
      );
    } else if (i < TENANTS * 2 + 20) {
      // A few installation-wide grants (no tenant pinned).
      lines.push(`  - name: g${i}`, `    match: { job: "global-${i}-*", pipeline: periodic }`);
    } else {
      lines.push(
        `  - name: g${i}`,
        `    match: { tenant: t${t}, project: github.com/org${t}/repo${i}, secret: openbao-id, pipeline: [post, periodic], job: "deploy-*" }`,
      );
    }
    lines.push(`    allow: [tenant-${t}-secret${i % 7 === 0 ? ', shared' : ''}]`, '    ttl: 15m');
  }
  files.push({ name: `grants-${files.length}.yaml`, text: `${lines.join('\n')}\n` });
  return files;
}
