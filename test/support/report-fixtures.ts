/**
 * A policy change on top of the shipped policies (policies/*.yaml), for the reach report's
 * tests: what a reviewer should see flagged. It
 * - widens `project-deploy` to the `check` pipeline (a pre-merge reach of a deploy key),
 * - adds `registry.yaml`: a tenant-wide grant with no pipeline on a new secret (pre-merge,
 *   and it matches the config project's shared token secret), with a cron rotation,
 * - narrows `compliance-checks` from 15m to 10m and gives compliance-clouds a rotation.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const SHIPPED_POLICIES = path.resolve(import.meta.dirname, '..', '..', 'policies');

/** The shipped policy files: name → text. */
export function shippedPolicyFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(SHIPPED_POLICIES).sort()) {
    if (/\.ya?ml$/.test(name))
      files[name] = readFileSync(path.join(SHIPPED_POLICIES, name), 'utf8');
  }
  return files;
}

function replaceOnce(text: string, from: string, to: string): string {
  if (text.split(from).length !== 2) {
    throw new Error(
      `report fixture: the shipped policies no longer contain ${JSON.stringify(from)} once`,
    );
  }
  return text.replace(from, to);
}

export const REGISTRY_POLICY = `secrets:
  registry-push:
    kv: { mount: secret, path: zuul/scs/registry/push, keys: [username, password] }

grants:
  - name: registry-push-everywhere
    match:
      tenant: scs
    allow: [registry-push]
    ttl: 1h

rotations:
  - secret: registry-push
    schedule: "0 3 * * 1"
    generate: { key: password, kind: password, length: 40 }
  - secret: compliance-clouds
    every: 30d
    generate: { key: password, kind: password, length: 40 }
`;

/** The shipped files with the change applied (and registry.yaml added). */
export function changedPolicyFiles(): Record<string, string> {
  const files = shippedPolicyFiles();
  let scs = files['scs.yaml'] ?? '';
  scs = replaceOnce(
    scs,
    '      pipeline: [post, promote]\n      job: "*-deploy"',
    '      pipeline: [post, promote, check]\n      job: "*-deploy"',
  );
  scs = replaceOnce(
    scs,
    '    allow: [compliance-clouds]\n    ttl: 15m',
    '    allow: [compliance-clouds]\n    ttl: 10m',
  );
  return { ...files, 'scs.yaml': scs, 'registry.yaml': REGISTRY_POLICY };
}
