/**
 * `zsb policy report` as a reviewer runs it: in a git repository whose last commit is a
 * policy change, `--against HEAD~1` reads the previous policies from git (the work tree
 * stays as it is), `--against DIR` compares with a directory, and a bad ref or a broken
 * old set fails with a clear message.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyReport } from '../../../src/policy/report/types.js';
import { runZsb } from '../../support/process.js';
import {
  changedPolicyFiles,
  type PolicyChangeRepo,
  policyChangeRepo,
  shippedPolicyFiles,
  writePolicies,
} from '../../support/report-fixtures.js';

let fixture: PolicyChangeRepo;
let repo: string;
const git = (...args: string[]) => fixture.git(...args);
const env = { ZSB_CONFIG: '' };

beforeAll(async () => {
  fixture = await policyChangeRepo('zsb-policy-report-');
  repo = fixture.dir;
});

afterAll(async () => {
  await fixture?.remove();
});

describe('zsb policy report', () => {
  it('diffs against a git ref without touching the work tree', async () => {
    await writeFile(
      path.join(repo, 'policies', 'scs.yaml'),
      changedPolicyFiles()['scs.yaml'] ?? '',
    );
    const head = git('rev-parse', 'HEAD');
    const run = await runZsb(['policy', 'report', 'policies', '--against', 'HEAD~1', '--json'], {
      cwd: repo,
      env,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as PolicyReport;
    expect(report.diff?.against).toBe('HEAD~1');
    const changes = Object.fromEntries(report.diff?.grants.map((g) => [g.subject, g.change]) ?? []);
    expect(changes).toEqual({
      'compliance-checks': 'narrowed',
      'project-deploy': 'widened',
      'registry-push-everywhere': 'added',
    });
    expect(git('status', '--porcelain')).toBe('');
    expect(git('rev-parse', 'HEAD')).toBe(head);
  });

  it('diffs against a directory and writes the HTML with --out', async () => {
    const old = path.join(repo, 'old-policies');
    await writePolicies(old, shippedPolicyFiles());
    const out = path.join(repo, 'report.html');
    const run = await runZsb(
      ['policy', 'report', '--policies', 'policies', '--against', old, '--out', out],
      { cwd: repo, env },
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^wrote .*report\.html: 4 identities, 4 secrets, 7 reaches \(3 pre-merge\), \d+ changes\n$/,
    );
    const html = await readFile(out, 'utf8');
    expect(html).toContain('Changes against');
    expect(html).toContain('registry-push-everywhere');
    await rm(old, { recursive: true });
    await rm(out);
  });

  it('refuses a ref that does not exist, and an old set that does not load', async () => {
    const bad = await runZsb(['policy', 'report', 'policies', '--against', 'no-such-ref'], {
      cwd: repo,
      env,
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("--against 'no-such-ref' is neither a directory nor a git ref");
    const outside = await mkdtemp(path.join(tmpdir(), 'zsb-policy-report-nogit-'));
    await writePolicies(outside, shippedPolicyFiles());
    const noGit = await runZsb(['policy', 'report', outside, '--against', 'main'], {
      cwd: outside,
      env: { ...env, GIT_CEILING_DIRECTORIES: path.dirname(outside) },
    });
    expect(noGit.code).toBe(1);
    expect(noGit.stderr).toContain('is not in a git repository to read a ref from');
    await rm(outside, { recursive: true });
    const broken = path.join(repo, 'broken');
    await writePolicies(broken, {
      'p.yaml': 'grants:\n  - name: g\n    match: {}\n    allow: [x]\n',
    });
    const run = await runZsb(['policy', 'report', 'policies', '--against', broken], {
      cwd: repo,
      env,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/broken: p\.yaml:3:\d+: .*must list at least one field/);
    expect(run.stdout).toBe('');
    await rm(broken, { recursive: true });
  });
});
