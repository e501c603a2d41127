/**
 * `zsb policy report`: the reach report for review (src/policy/report/): one self-contained
 * HTML file, or its data as --json. `--against GIT-REF|DIR` adds what a change adds and
 * removes (a ref is read with git's object database, never by checking it out);
 * `--status` adds the rotation state the broker's OpenBao records.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import { formatProblem, loadPolicyDir } from '../policy/load.js';
import { diffReports } from '../policy/report/diff.js';
import { renderReportHtml } from '../policy/report/html.js';
import { buildReport, type RecordedRotation } from '../policy/report/model.js';
import type { PolicyReport } from '../policy/report/types.js';
import type { PolicySet, ZuulTenantFacts } from '../policy/types.js';
import { rotationServiceFor } from './rotate.js';

/** Where the policies are and what they are checked against (policy.ts `settings`). */
interface PolicySettings {
  readonly dir: string;
  readonly maxTtlSeconds: number;
  /** The broker configuration, when given: its issuers' build bindings are checked. */
  readonly config: Config | undefined;
}

/** What `zsb policy` shares with its sub-commands (policy.ts). */
export interface PolicyCommandHelpers {
  settings(
    dir: string | undefined,
    options: { policies?: string; config?: string },
  ): PolicySettings;
  loadOrReport(s: PolicySettings): Promise<PolicySet | undefined>;
  zuulFacts(
    set: PolicySet,
    options: { zuulUrl?: string; tenant?: string[] },
    fallbackTenants: readonly string[],
  ): Promise<ZuulTenantFacts | undefined>;
  pinnedTenants(set: PolicySet): string[];
}

interface ReportCommandOptions {
  readonly policies?: string;
  readonly config?: string;
  readonly out?: string;
  readonly json?: boolean;
  readonly against?: string;
  readonly status?: boolean;
  readonly zuulUrl?: string;
  readonly tenant?: string[];
}

const run = promisify(execFile);
/** Policy files are at most 256 KiB each (the loader's limit); a listing is far smaller. */
const GIT_MAX_BUFFER = 16 * 1024 * 1024;

async function git(cwd: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run('git', [...args], { cwd, maxBuffer: GIT_MAX_BUFFER });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`git ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

/**
 * Copies the policy files (top-level *.yaml/*.yml of the policy directory) as they are at
 * `ref` into a fresh temporary directory. The work tree and index are left alone.
 */
async function policiesAtRef(dir: string, ref: string, into: string): Promise<void> {
  if (ref.startsWith('-'))
    throw new Error(`--against '${ref}' is neither a directory nor a git ref`);
  const top = (
    await git(dir, ['rev-parse', '--show-toplevel']).catch(() => {
      throw new Error(
        `--against '${ref}' is not a directory, and ${dir} is not in a git repository to read a ref from`,
      );
    })
  ).trim();
  const rel = path
    .relative(await realpath(top), await realpath(dir))
    .split(path.sep)
    .join('/');
  const commit = (
    await git(top, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]).catch(() => '')
  ).trim();
  if (commit === '') throw new Error(`--against '${ref}' is neither a directory nor a git ref`);
  const listing = await git(top, ['ls-tree', '-z', commit, '--', rel === '' ? '.' : `${rel}/`]);
  let copied = 0;
  for (const line of listing.split('\0')) {
    const m = /^\d+ blob ([0-9a-f]+)\t(.+)$/.exec(line);
    if (m === null) continue;
    const [, object = '', file = ''] = m;
    const name = path.posix.basename(file);
    if (!/\.ya?ml$/.test(name)) continue;
    const { stdout } = await run('git', ['cat-file', 'blob', object], {
      cwd: top,
      encoding: 'buffer',
      maxBuffer: GIT_MAX_BUFFER,
    });
    await writeFile(path.join(into, name), stdout);
    copied++;
  }
  if (copied === 0) throw new Error(`${ref} has no policy files in ${rel === '' ? '.' : rel}/`);
}

async function isDirectory(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** The policy set to compare with, or undefined after printing its problems. */
async function loadAgainst(
  dir: string,
  against: string,
  maxTtlSeconds: number,
): Promise<PolicySet | undefined> {
  let from = path.resolve(against);
  let scratch: string | undefined;
  if (!(await isDirectory(from))) {
    scratch = await mkdtemp(path.join(tmpdir(), 'zsb-policy-against-'));
    from = scratch;
  }
  try {
    if (scratch !== undefined) await policiesAtRef(dir, against, scratch);
    const result = await loadPolicyDir(from, { maxTtlSeconds });
    if (result.ok) return result.set;
    for (const p of result.problems) process.stderr.write(`${against}: ${formatProblem(p)}\n`);
    process.exitCode = 1;
    return undefined;
  } finally {
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * The recorded rotation state, read the way `zsb rotation status` reads it, through the
 * configuration `settings` already loaded (from --config or ZSB_CONFIG).
 */
async function recordedRotations(config: Config | undefined): Promise<readonly RecordedRotation[]> {
  if (config === undefined) {
    throw new Error('--status: no configuration: pass --config FILE or set ZSB_CONFIG');
  }
  const { service, stop } = await rotationServiceFor(config);
  try {
    return await service.status();
  } finally {
    await stop();
  }
}

function counts(report: PolicyReport): string {
  const preMerge = report.reaches.filter((r) => r.preMerge).length;
  const d = report.diff;
  const changes =
    d === undefined ? '' : `, ${d.grants.length + d.reaches.length + d.flags.length} changes`;
  return `${report.identities.length} identities, ${report.secrets.length} secrets, ${report.reaches.length} reaches (${preMerge} pre-merge)${changes}`;
}

export function registerReportCommand(policy: Command, helpers: PolicyCommandHelpers): void {
  policy
    .command('report')
    .argument('[dir]', 'policy directory')
    .option('--policies <dir>', 'policy directory (same as DIR)')
    .option('--config <file>', 'broker configuration (maxTtlSeconds; OpenBao for --status)')
    .option('--out <file>', 'write the report to FILE instead of stdout')
    .option('--json', 'the report data as JSON instead of HTML')
    .option(
      '--against <ref-or-dir>',
      'also show what changed since a git ref or another policy directory',
    )
    .option(
      '--status',
      "read last and next rotation runs from the broker's OpenBao (needs --config)",
    )
    .option('--zuul-url <url>', "zuul-web's root: also ask it which projects are config projects")
    .option('--tenant <name...>', 'tenants to ask zuul-web about (default: tenants the grants pin)')
    .description(
      'who can reach which secret, for how long, delivered how, with warnings, rotations and (--against) the diff: one self-contained HTML file',
    )
    .action(async (dir: string | undefined, options: ReportCommandOptions) => {
      const s = helpers.settings(dir, options);
      const set = await helpers.loadOrReport(s);
      if (set === undefined) return;
      const zuul = await helpers.zuulFacts(set, options, helpers.pinnedTenants(set));
      const now = new Date();
      const recorded = options.status ? await recordedRotations(s.config) : undefined;
      const label = path.relative(process.cwd(), s.dir) || '.';
      let report = buildReport(set, {
        dir: label,
        now,
        ...(zuul === undefined ? {} : { zuul }),
        ...(recorded === undefined ? {} : { recorded }),
      });
      if (options.against !== undefined) {
        const old = await loadAgainst(s.dir, options.against, s.maxTtlSeconds);
        if (old === undefined) return;
        const oldZuul = await helpers.zuulFacts(old, options, helpers.pinnedTenants(old));
        const before = buildReport(old, {
          dir: options.against,
          now,
          ...(oldZuul === undefined ? {} : { zuul: oldZuul }),
        });
        report = { ...report, diff: diffReports(before, report, options.against) };
      }
      const text = options.json ? `${JSON.stringify(report, null, 2)}\n` : renderReportHtml(report);
      if (options.out === undefined) {
        process.stdout.write(text);
        return;
      }
      await writeFile(options.out, text);
      process.stdout.write(`wrote ${options.out}: ${counts(report)}\n`);
    });
}
