/**
 * A policy change on top of the shipped policies (policies/*.yaml), for the reach report's
 * tests: what a reviewer should see flagged. It
 * - widens `project-deploy` to the `check` pipeline (a pre-merge reach of a deploy key),
 * - adds `registry.yaml`: a tenant-wide grant with no pipeline on a new secret (pre-merge,
 *   and it matches the config project's shared token secret), with a cron rotation,
 * - narrows `compliance-checks` from 15m to 10m and gives compliance-clouds a rotation.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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

/** Names that would be markup or script if the page did not escape them. */
export const HOSTILE_POLICY = `secrets:
  s: { kv: { mount: secret, path: zuul/x } }
grants:
  - name: g
    match:
      tenant: "t\\"><script>window.injected=1;alert(1)</script>"
      pipeline: post
      job: "<img src=x onerror=window.injected=2>"
      project: "a/</script><script>window.injected=3</script>"
    allow: [s]
`;

export async function writePolicies(dir: string, files: Record<string, string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
}

export interface PolicyChangeRepo {
  readonly dir: string;
  git(...args: string[]): string;
  remove(): Promise<void>;
}

/**
 * A git repository whose `policies/` holds the shipped policies in its first commit and the
 * change above in its second (HEAD), as a reviewer's clone of a change would.
 */
export async function policyChangeRepo(prefix: string): Promise<PolicyChangeRepo> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const git = (...args: string[]) =>
    execFileSync('git', args, {
      cwd: dir,
      encoding: 'utf8',
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: 'Report Test',
        GIT_AUTHOR_EMAIL: 'report@example.org',
        GIT_COMMITTER_NAME: 'Report Test',
        GIT_COMMITTER_EMAIL: 'report@example.org',
      },
    });
  git('init', '-q', '-b', 'main');
  await writePolicies(path.join(dir, 'policies'), shippedPolicyFiles());
  git('add', 'policies');
  git('commit', '-qm', 'shipped policies');
  await writePolicies(path.join(dir, 'policies'), changedPolicyFiles());
  git('add', 'policies');
  git('commit', '-qm', 'a policy change');
  return { dir, git, remove: () => rm(dir, { recursive: true, force: true }) };
}
