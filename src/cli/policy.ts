/**
 * `zsb policy …`: check, test, explain and compile policies offline, so a security admin
 * can prove what a change does before it ships. The directory comes from DIR or
 * --policies, else the configuration's `policies` (--config or ZSB_CONFIG), else ./policies.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { decodeJwt } from 'jose';
import { loadConfigFile } from '../config/load.js';
import {
  type Config,
  DEFAULT_MAX_TTL_SECONDS,
  IssuerConfigSchema,
  issuerBindingsOf,
} from '../config/schema.js';
import { parseSubject } from '../identity/subject.js';
import { createOpenBaoClient } from '../openbao/client.js';
import { compileOpenBaoSetup, DEFAULT_COMPILE_OPTIONS } from '../policy/compile.js';
import { configProjectWarnings } from '../policy/config-projects.js';
import { type Explanation, explain } from '../policy/explain.js';
import { formatProblem, loadPolicyDir } from '../policy/load.js';
import { rotationWarnings } from '../policy/rotation-targets.js';
import { loadPolicyTests, runPolicyTests } from '../policy/test-runner.js';
import {
  BUILD_MATCH_FIELDS,
  type PolicySet,
  type PolicySubject,
  type PolicyWarning,
  type ZuulTenantFacts,
} from '../policy/types.js';
import { mergeZuulFacts } from '../policy/zuul-section.js';
import { fetchConfigProjects } from '../zuul/tenant-projects.js';
import { registerReportCommand } from './policy-report.js';

interface PolicyOptions {
  readonly policies?: string;
  readonly config?: string;
}

interface ZuulOptions {
  readonly zuulUrl?: string;
  readonly tenant?: string[];
}

function at(w: Pick<PolicyWarning, 'location'>): string {
  return `${w.location.file}:${w.location.line}:${w.location.column}`;
}

/** Tenants a grant names literally: the ones worth asking zuul-web about. */
function pinnedTenants(set: PolicySet): string[] {
  const tenants = new Set(set.zuul?.configProjects.keys() ?? []);
  for (const grant of set.grants) {
    for (const tenant of grant.match.tenant ?? []) if (!tenant.includes('*')) tenants.add(tenant);
  }
  return [...tenants].sort();
}

/**
 * The policy directory's `zuul:` facts, plus the config projects zuul-web lists when
 * `--zuul-url` is given (for `--tenant`, else `fallbackTenants`).
 */
async function zuulFacts(
  set: PolicySet,
  options: ZuulOptions,
  fallbackTenants: readonly string[],
): Promise<ZuulTenantFacts | undefined> {
  if (options.zuulUrl === undefined) return set.zuul;
  const base = options.zuulUrl.replace(/\/+$/, '');
  // The configuration's rule for URLs: https, plain http only to loopback, no credentials.
  const safe = IssuerConfigSchema.shape.jwksUrl.safeParse(base).success;
  if (!safe || new URL(base).search || new URL(base).hash) {
    throw new Error(
      "--zuul-url must be zuul-web's https root (plain http only to loopback), without credentials, query or fragment",
    );
  }
  const tenants = options.tenant?.length ? options.tenant : fallbackTenants;
  const fetched = new Map<string, Set<string>>();
  for (const tenant of tenants) fetched.set(tenant, await fetchConfigProjects(base, tenant));
  return mergeZuulFacts(set.zuul?.configProjects, fetched);
}

function settings(
  dir: string | undefined,
  options: PolicyOptions,
): { dir: string; maxTtlSeconds: number; config: Config | undefined } {
  const configFile = options.config ?? process.env.ZSB_CONFIG;
  const config = configFile ? loadConfigFile(configFile) : undefined;
  const chosen = dir ?? options.policies ?? config?.policies ?? './policies';
  return {
    dir: path.resolve(chosen),
    maxTtlSeconds: config?.maxTtlSeconds ?? DEFAULT_MAX_TTL_SECONDS,
    config,
  };
}

/** Loads and validates, printing `file:line:col: message` per problem; undefined on failure. */
async function loadOrReport(s: ReturnType<typeof settings>): Promise<PolicySet | undefined> {
  // With the configuration, grants on build facts must reach only bound issuers (ADR 0014).
  const issuers = s.config === undefined ? undefined : issuerBindingsOf(s.config);
  const result = await loadPolicyDir(s.dir, {
    maxTtlSeconds: s.maxTtlSeconds,
    ...(issuers === undefined ? {} : { issuers }),
  });
  if (result.ok) return result.set;
  for (const p of result.problems) process.stderr.write(`${formatProblem(p)}\n`);
  process.exitCode = 1;
  return undefined;
}

function str(claims: Record<string, unknown>, name: string): string {
  const value = claims[name];
  return typeof value === 'string' ? value : '';
}

/** An identity from claims as Zuul mints them, taken without signature or time checks. */
function subjectFromClaims(claims: Record<string, unknown>): PolicySubject {
  const parsed = parseSubject(str(claims, 'sub'));
  if (!parsed.ok)
    throw new Error(`the claims' sub is not a Zuul secret subject (${parsed.reason})`);
  if (str(claims, 'tenant') !== parsed.subject.tenant) {
    throw new Error(
      'the tenant claim does not match the tenant in sub; the broker would reject this token',
    );
  }
  return {
    issuer: str(claims, 'iss'),
    tenant: parsed.subject.tenant,
    project: parsed.subject.project,
    secret: parsed.subject.secret,
    pipeline: str(claims, 'pipeline'),
    job: str(claims, 'job-name'),
    playbook: str(claims, 'playbook'),
    build: str(claims, 'build-uuid'),
  };
}

interface BuildFactOptions {
  readonly buildProject?: string;
  readonly branch?: string;
  readonly ref?: string;
}

/** What the build binding would learn from zuul-web, given on the command line. */
function buildFacts(o: BuildFactOptions): Partial<PolicySubject> {
  return {
    ...(o.buildProject === undefined ? {} : { buildProject: o.buildProject }),
    ...(o.branch === undefined ? {} : { branch: o.branch }),
    ...(o.ref === undefined ? {} : { ref: o.ref }),
  };
}

function printExplanation(e: Explanation): void {
  const out: string[] = [];
  const id = e.identity;
  out.push('Identity');
  for (const [k, v] of Object.entries({
    issuer: id.issuer,
    tenant: id.tenant,
    project: id.project,
    secret: id.secret,
    pipeline: id.pipeline,
    job: id.job,
    playbook: id.playbook,
  })) {
    out.push(`  ${k.padEnd(9)} ${v || '(none)'}`);
  }
  // Build facts only when given: without them, grants on them do not match.
  for (const [k, v] of Object.entries({
    buildProject: id.buildProject,
    branch: id.branch,
    ref: id.ref,
  })) {
    if (v !== undefined) out.push(`  ${k.padEnd(12)} ${v}`);
  }
  out.push('', 'Grants');
  for (const g of e.grants) {
    out.push(
      `  ${g.matched ? 'match   ' : 'no match'} ${g.name}${g.matched ? '' : ` (${g.failedField} does not match)`}  [${g.location}]`,
    );
  }
  out.push('', 'Secrets');
  for (const [name, s] of Object.entries(e.secrets)) {
    out.push(
      s.decision === 'allow'
        ? `  allow  ${name}  by grant ${s.grant}, ttl ${s.ttl}s, wrap ${s.wrap}${s.file ? `, file ${s.file.summary}` : ''}`
        : `  deny   ${name}  (${s.reason})`,
    );
  }
  if (e.warnings.length > 0) {
    out.push('', 'Warnings');
    for (const w of e.warnings) {
      out.push(`  ${w.kind}: grant ${w.grant}: ${w.message}  [${at(w)}]`);
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

export function registerPolicyCommands(program: Command): void {
  const policy = program
    .command('policy')
    .description('check, test, explain and compile policy files');

  policy
    .command('check')
    .argument('[dir]', 'policy directory')
    .option('--policies <dir>', 'policy directory (same as DIR)')
    .option('--config <file>', 'broker configuration (for `policies` and `maxTtlSeconds`)')
    .option('--zuul-url <url>', "zuul-web's root: also ask it which projects are config projects")
    .option('--tenant <name...>', 'tenants to ask zuul-web about (default: tenants the grants pin)')
    .description(
      "validate every policy file; exit 1 with file:line:col: message per problem; warn (file:line:col: warning CODE: …) about grants that reach a config project's token secret by project alone",
    )
    .action(async (dir: string | undefined, options: PolicyOptions & ZuulOptions) => {
      const s = settings(dir, options);
      const set = await loadOrReport(s);
      if (set === undefined) return;
      const facts = await zuulFacts(set, options, pinnedTenants(set));
      const warnings = set.grants.flatMap((g) => configProjectWarnings(g, facts, set.secrets));
      for (const w of warnings) {
        process.stderr.write(`${at(w)}: warning ${w.kind}: grant '${w.grant}' ${w.message}\n`);
      }
      if (s.config === undefined) {
        for (const g of set.grants) {
          const field = BUILD_MATCH_FIELDS.find((f) => g.match[f] !== undefined);
          if (field === undefined) continue;
          process.stderr.write(
            `${g.location.file}:${g.location.line}:${g.location.column}: note: grant '${g.name}' matches ${field}, known only through the build binding; give --config (or ZSB_CONFIG) to check that its issuers have one\n`,
          );
        }
      }
      const rotationNotes = rotationWarnings(set);
      for (const w of rotationNotes) {
        process.stderr.write(
          `${at(w)}: warning ${w.kind}: rotation '${w.rotation}' ${w.message}\n`,
        );
      }
      const count = warnings.length + rotationNotes.length;
      const warned = count === 0 ? '' : `, ${count} warnings`;
      process.stdout.write(
        `${s.dir}: ok (${set.secrets.size} secrets, ${set.grants.length} grants, ${set.rotations.length} rotations in ${set.files.length} files${warned})\n`,
      );
    });

  policy
    .command('test')
    .argument('[dir]', 'policy directory; cases in DIR/tests/')
    .option('--policies <dir>', 'policy directory (same as DIR)')
    .option('--config <file>', 'broker configuration (for `policies` and `maxTtlSeconds`)')
    .description('run the policy test cases; exit 1 on any mismatch')
    .action(async (dir: string | undefined, options: PolicyOptions) => {
      const s = settings(dir, options);
      const set = await loadOrReport(s);
      if (set === undefined) return;
      const cases = await loadPolicyTests(path.join(s.dir, 'tests'));
      if (!cases.ok) {
        for (const p of cases.problems) process.stderr.write(`${formatProblem(p)}\n`);
        process.exitCode = 1;
        return;
      }
      const outcomes = runPolicyTests(set, cases.cases);
      let failed = 0;
      for (const o of outcomes) {
        if (o.passed) process.stdout.write(`ok    ${o.name}\n`);
        else {
          failed++;
          process.stdout.write(
            `FAIL  ${o.location.file}:${o.location.line}: ${o.name}: ${o.message}\n`,
          );
        }
      }
      process.stdout.write(`policy tests: ${outcomes.length - failed} ok, ${failed} failing\n`);
      if (failed > 0 || outcomes.length === 0) process.exitCode = 1;
    });

  policy
    .command('explain')
    .argument('[names...]', 'secret names to decide (default: every defined secret)')
    .option('--token <jwt>', 'a Zuul ID token (its claims are read without verification)')
    .option('--claims <file>', 'a JSON claim set as Zuul mints it')
    .option('--policies <dir>', 'policy directory')
    .option('--config <file>', 'broker configuration')
    .option('--json', 'machine-readable output')
    .option('--zuul-url <url>', "zuul-web's root: also ask it which projects are config projects")
    .option('--tenant <name...>', "tenants to ask zuul-web about (default: the identity's)")
    .option('--build-project <name>', 'the canonical project the build runs for (build binding)')
    .option('--branch <name>', 'the branch the build runs for (build binding)')
    .option('--ref <ref>', 'the ref the build runs for, e.g. refs/tags/v1 (build binding)')
    .description('which grants match an identity, which secrets it gets and why others are denied')
    .action(
      async (
        names: string[],
        options: PolicyOptions &
          ZuulOptions &
          BuildFactOptions & { token?: string; claims?: string; json?: boolean },
      ) => {
        if ((options.token === undefined) === (options.claims === undefined)) {
          throw new Error('give exactly one of --token JWT or --claims FILE');
        }
        let claims: Record<string, unknown>;
        if (options.token !== undefined) {
          try {
            claims = decodeJwt(options.token);
          } catch {
            throw new Error('--token is not a decodable JWT');
          }
        } else {
          const text = await readFile(options.claims ?? '', 'utf8');
          const parsed: unknown = JSON.parse(text);
          if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
            throw new Error('--claims must hold a JSON object');
          }
          claims = parsed as Record<string, unknown>;
        }
        const s = settings(undefined, options);
        const set = await loadOrReport(s);
        if (set === undefined) return;
        const subject = { ...subjectFromClaims(claims), ...buildFacts(options) };
        const facts = await zuulFacts(set, options, [subject.tenant]);
        const result = explain(set, subject, names, facts);
        if (options.json) {
          const { identity, grants, secrets, warnings } = result;
          const json = {
            identity,
            grants: grants.map((g) => ({
              name: g.name,
              matched: g.matched,
              failedField: g.failedField,
            })),
            secrets,
            warnings: warnings.map((w) => ({
              grant: w.grant,
              kind: w.kind,
              message: w.message,
              location: at(w),
            })),
          };
          process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
        } else {
          printExplanation(result);
        }
      },
    );

  policy
    .command('compile')
    .option('--policies <dir>', 'policy directory')
    .option('--config <file>', 'broker configuration')
    .option('--apply', 'write everything to OpenBao (BAO_ADDR and BAO_TOKEN of an admin)')
    .option('--name <name>', "ACL policy name of the broker's own token", 'zsb-broker')
    .option('--backup', 'include what backups need (implied by a backup: section)')
    .description(
      'print the least-privilege OpenBao set-up for the broker: its policy, the build-token policy and role',
    )
    .action(async (options: PolicyOptions & { apply?: boolean; name: string }) => {
      const s = settings(undefined, options);
      const set = await loadOrReport(s);
      if (set === undefined) return;
      const openbao = s.config?.openbao;
      const compileOptions = {
        stateMount: openbao?.stateMount ?? DEFAULT_COMPILE_OPTIONS.stateMount,
        statePrefix: openbao?.statePrefix ?? DEFAULT_COMPILE_OPTIONS.statePrefix,
        buildTokenRole: openbao?.buildTokenRole ?? DEFAULT_COMPILE_OPTIONS.buildTokenRole,
        buildPolicy: openbao?.buildPolicy ?? DEFAULT_COMPILE_OPTIONS.buildPolicy,
        maxTtlSeconds: s.maxTtlSeconds,
        // --backup, or a configuration with a backup: section: what backups need too.
        backup: (options as { backup?: boolean }).backup === true || s.config?.backup !== undefined,
      };
      const setup = compileOpenBaoSetup(set, compileOptions);
      if (!options.apply) {
        process.stdout.write(
          [
            `# ---- ACL policy '${options.name}' (the broker's own token) ----`,
            setup.brokerPolicy,
            `# ---- ACL policy '${compileOptions.buildPolicy}' (per-build tokens) ----`,
            setup.buildPolicy,
            `# ---- token role '${compileOptions.buildTokenRole}' (auth/token/roles/${compileOptions.buildTokenRole}) ----`,
            `${JSON.stringify(setup.buildTokenRole, null, 2)}\n`,
          ].join('\n'),
        );
        return;
      }
      const address = process.env.BAO_ADDR ?? process.env.VAULT_ADDR;
      const token = process.env.BAO_TOKEN ?? process.env.VAULT_TOKEN;
      if (!address || !token) {
        throw new Error(
          '--apply needs BAO_ADDR and BAO_TOKEN (an admin allowed to write sys/policies/acl and auth/token/roles)',
        );
      }
      const client = createOpenBaoClient({
        addresses: [address],
        timeoutMs: 10000,
        maxConnections: 1,
        token: () => token,
      });
      await client.putAclPolicy(options.name, setup.brokerPolicy);
      await client.putAclPolicy(compileOptions.buildPolicy, setup.buildPolicy);
      await client.putTokenRole(compileOptions.buildTokenRole, { ...setup.buildTokenRole });
      process.stdout.write(
        `wrote ACL policy ${options.name}, ACL policy ${compileOptions.buildPolicy} and token role ${compileOptions.buildTokenRole} to ${address}\n`,
      );
    });
  registerReportCommand(policy, { settings, loadOrReport, zuulFacts, pinnedTenants });
}
