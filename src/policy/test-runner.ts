/**
 * Policy tests (policy.md "Policy tests"): cases of identity + expected decisions,
 * kept next to the policies and run by `zsb policy test` and CI, so a policy
 * change that widens or narrows access shows up as a failing case in review.
 */
import { basename } from 'node:path';
import { z } from 'zod';
import { decide } from './decide.js';
import { readYamlDirectory } from './directory.js';
import type { SourceFile } from './source.js';
import { issuesToProblems, parseSource } from './source.js';
import type { Grant, PolicyProblem, PolicySet, PolicySubject, SourceLocation } from './types.js';

/** Shown as the issuer of a case that names none; such a case matches grants of any issuer. */
export const ANY_ISSUER = '*any*';
const DEFAULT_BUILD = '0'.repeat(32);

export interface PolicyTestCase {
  readonly name: string;
  readonly identity: PolicySubject;
  /** True when the case names no issuer: grants' `issuer` fields are then ignored. */
  readonly anyIssuer: boolean;
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  readonly location: SourceLocation;
}

export interface PolicyTestOutcome {
  readonly name: string;
  readonly passed: boolean;
  /** Why the case failed; "as expected" when it passed. */
  readonly message: string;
  readonly location: SourceLocation;
}

export type PolicyTestsLoad =
  | { readonly ok: true; readonly cases: readonly PolicyTestCase[] }
  | { readonly ok: false; readonly problems: readonly PolicyProblem[] };

const field = z.string().min(1, 'must not be empty');
export const PolicyTestCaseSchema = z
  .object({
    name: field,
    identity: z
      .object({
        issuer: field.optional(),
        tenant: field,
        project: field,
        secret: field,
        pipeline: field,
        job: field,
        playbook: z.string().optional(),
        build: field.optional(),
        // What the build binding would learn from zuul-web (ADR 0014); absent: not known.
        buildProject: field.optional(),
        branch: field.optional(),
        ref: field.optional(),
      })
      .strict(),
    allow: z.array(field).optional(),
    deny: z.array(field).optional(),
  })
  .strict();
const TestFileSchema = z.array(PolicyTestCaseSchema).nullable();

/** Validates policy test files given as data (pure). */
export function parsePolicyTests(files: readonly SourceFile[]): PolicyTestsLoad {
  const problems: PolicyProblem[] = [];
  const cases: PolicyTestCase[] = [];
  for (const file of files) {
    const parsed = parseSource(file);
    if (!parsed.ok) {
      problems.push(...parsed.problems);
      continue;
    }
    const source = parsed.source;
    const result = TestFileSchema.safeParse(source.data ?? null, { reportInput: true });
    if (!result.success) {
      problems.push(
        ...issuesToProblems(result.error.issues, source, { topLevel: 'a list of test cases' }),
      );
      continue;
    }
    for (const [i, c] of (result.data ?? []).entries()) {
      const location = source.locate([i]);
      const allow = c.allow ?? [];
      const deny = c.deny ?? [];
      if (allow.length + deny.length === 0) {
        problems.push({ ...location, message: `case '${c.name}' lists no allow or deny names` });
      }
      const both = allow.filter((n) => deny.includes(n));
      if (both.length > 0) {
        problems.push({
          ...location,
          message: `case '${c.name}' both allows and denies: ${both.join(', ')}`,
        });
      }
      const id = c.identity;
      cases.push({
        name: c.name,
        identity: {
          issuer: id.issuer ?? ANY_ISSUER,
          tenant: id.tenant,
          project: id.project,
          secret: id.secret,
          pipeline: id.pipeline,
          job: id.job,
          playbook: id.playbook ?? '',
          build: id.build ?? DEFAULT_BUILD,
          ...(id.buildProject === undefined ? {} : { buildProject: id.buildProject }),
          ...(id.branch === undefined ? {} : { branch: id.branch }),
          ...(id.ref === undefined ? {} : { ref: id.ref }),
        },
        anyIssuer: id.issuer === undefined,
        allow,
        deny,
        location,
      });
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, cases };
}

/** Reads every `*.yaml`/`*.yml` file of the policy test directory (usually `policies/tests`). */
export async function loadPolicyTests(dir: string): Promise<PolicyTestsLoad> {
  const contents = await readYamlDirectory(dir, 'policy test directory', `${basename(dir)}/`);
  const parsed = parsePolicyTests(contents.files);
  if (contents.problems.length === 0) return parsed;
  return { ok: false, problems: [...contents.problems, ...(parsed.ok ? [] : parsed.problems)] };
}

/** The same set with every grant's issuer condition dropped, for cases that name no issuer. */
function ignoringIssuer(set: PolicySet): PolicySet {
  const grants = set.grants.map((g): Grant => {
    if (g.match.issuer === undefined) return g;
    const { issuer: _ignored, ...match } = g.match;
    return { ...g, match };
  });
  return { ...set, grants };
}

function runCase(set: PolicySet, c: PolicyTestCase): string[] {
  const failures: string[] = [];
  // A typo in a deny list would otherwise pass silently, proving nothing.
  const unknown = [...c.allow, ...c.deny].filter((n) => !set.secrets.has(n));
  if (unknown.length > 0) failures.push(`names secrets no policy defines: ${unknown.join(', ')}`);
  const wronglyDenied = c.allow.filter((n) => !decide(set, c.identity, [n]).allowed);
  if (wronglyDenied.length > 0) {
    failures.push(`expected allowed, but denied: ${wronglyDenied.join(', ')}`);
  } else if (c.allow.length > 0 && !decide(set, c.identity, c.allow).allowed) {
    failures.push('each name in allow is allowed alone, but not all together');
  }
  const wronglyAllowed: string[] = [];
  for (const n of c.deny) {
    const d = decide(set, c.identity, [n]);
    if (d.allowed) wronglyAllowed.push(`${n} (grant ${d.secrets.get(n)?.grant ?? '?'})`);
  }
  if (wronglyAllowed.length > 0) {
    failures.push(`expected denied, but allowed: ${wronglyAllowed.join(', ')}`);
  }
  return failures;
}

/** Runs each case against the set; one outcome per case, in order. */
export function runPolicyTests(
  set: PolicySet,
  cases: readonly PolicyTestCase[],
): PolicyTestOutcome[] {
  let anyIssuerSet: PolicySet | undefined;
  return cases.map((c) => {
    if (c.anyIssuer) anyIssuerSet ??= ignoringIssuer(set);
    const failures = runCase(c.anyIssuer && anyIssuerSet !== undefined ? anyIssuerSet : set, c);
    return {
      name: c.name,
      passed: failures.length === 0,
      message: failures.length === 0 ? 'as expected' : failures.join('; '),
      location: c.location,
    };
  });
}
