/**
 * Loading policy files (shared/design/policy.md) into a validated, immutable
 * PolicySet. All-or-nothing: any problem in any file rejects the whole set, and
 * every problem is reported (not just the first) with the line and column of the
 * node at fault, so `zsb policy check` is a useful review tool.
 */
import { z } from 'zod';
import { hasControlCharacter, showName as show } from './characters.js';
import { readYamlDirectory } from './directory.js';
import { formatDuration, parseDuration } from './duration.js';
import { compileGlob } from './glob.js';
import { checkCommonNameTemplate, checkMount, checkPathTemplate, checkRole } from './paths.js';
import { RenderSchema, readRenderSpec } from './render-spec.js';
import {
  ApplicationCredentialTargetSchema,
  applicationCredentialTarget,
  CommandTargetSchema,
  commandTarget,
} from './rotation-targets.js';
import { isCronExpression } from './schedule.js';
import type { DataPath, ParsedSource, ParseSourceResult, SourceFile } from './source.js';
import { formatPath, issuesToProblems, parseSource } from './source.js';
import type {
  GenerateSpec,
  Grant,
  LoadResult,
  MatchField,
  PolicyProblem,
  PolicySet,
  Rotation,
  RotationTarget,
  SecretDefinition,
  SecretSource,
  SourceLocation,
} from './types.js';
import { BUILD_MATCH_FIELDS, MATCH_FIELDS } from './types.js';
import { mergeZuulFacts, readZuulSection, ZuulSectionSchema } from './zuul-section.js';

/**
 * Secret and grant names: 1–128 characters, lowercase letters, digits, `.`, `_`,
 * `-`, starting with a letter or digit. Lowercase only, so two names never differ
 * by case alone (they travel in URLs, logs and reviews); no `/`, so a name is
 * always one URL path segment in `GET /v1/secrets/{name}`.
 */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,127}$/;
const NAME_RULE =
  "use 1-128 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit";

export type SecretKind = SecretSource['kind'];
export const SECRET_KINDS: readonly SecretKind[] = ['kv', 'database', 'pki', 'token'];

export interface LoadOptions {
  /** Global maximum TTL (config `maxTtlSeconds`): the default and the cap of every grant's ttl. */
  readonly maxTtlSeconds: number;
  /** Kinds this broker version can serve; defaults to all. */
  readonly supportedKinds?: readonly SecretKind[];
  /**
   * The configured issuers and those with a build binding. Given, a grant that matches a
   * build fact (buildProject, branch, ref) must reach only bound issuers; unknown (a check
   * without the configuration), the rule cannot be applied here.
   */
  readonly issuers?: IssuerBindings;
}

export interface IssuerBindings {
  readonly configured: readonly string[];
  readonly bound: ReadonlySet<string>;
}

const nonEmptyString = z.string().min(1, 'must not be empty');
const nonEmptyList = z.array(nonEmptyString).min(1, 'must list at least one entry');
const durationValue = z.union([z.number(), z.string()], {
  error: 'must be a duration such as 900, 15m or 1h30m',
});
const matchValue = z.union(
  [z.string(), z.array(z.string()).min(1, 'must list at least one pattern')],
  {
    error: 'must be a string or a non-empty list of strings',
  },
);

const KvSchema = z
  .object({ mount: z.string(), path: z.string(), keys: nonEmptyList.optional() })
  .strict();
const DatabaseSchema = z.object({ mount: z.string(), role: z.string() }).strict();
const PkiSchema = z
  .object({ mount: z.string(), role: z.string(), commonName: z.string() })
  .strict();
const TokenSchema = z.object({ policies: nonEmptyList }).strict();

const SecretSchema = z
  .object({
    kv: KvSchema.optional(),
    database: DatabaseSchema.optional(),
    pki: PkiSchema.optional(),
    token: TokenSchema.optional(),
    render: RenderSchema.optional(),
  })
  .strict();

const GrantSchema = z
  .object({
    name: z.string(),
    match: z
      .object({
        issuer: matchValue.optional(),
        tenant: matchValue.optional(),
        project: matchValue.optional(),
        secret: matchValue.optional(),
        pipeline: matchValue.optional(),
        job: matchValue.optional(),
        playbook: matchValue.optional(),
        // Build binding only (ADR 0014): zuul-web's record of the running build.
        buildProject: matchValue.optional(),
        branch: matchValue.optional(),
        ref: matchValue.optional(),
      })
      .strict(),
    allow: z.array(z.string()).min(1, 'must list at least one secret'),
    ttl: durationValue.optional(),
    wrap: z.enum(['optional', 'required', 'never']).optional(),
  })
  .strict();

const GenerateSchema = z
  .object({
    key: nonEmptyString,
    kind: z.enum(['password', 'token', 'keypair']),
    length: z.number().int().optional(),
    alphabet: nonEmptyString.optional(),
    format: nonEmptyString.optional(),
  })
  .strict();

const RotationTargetSchema = z
  .object({
    postgres: z
      .object({
        admin: nonEmptyString,
        users: z.array(nonEmptyString).length(2, 'must list exactly two logins').optional(),
      })
      .strict()
      .optional(),
    staticRole: z.object({ mount: z.string(), role: z.string() }).strict().optional(),
    applicationCredential: ApplicationCredentialTargetSchema.optional(),
    command: CommandTargetSchema.optional(),
  })
  .strict();

const RotationSchema = z
  .object({
    secret: z.string().optional(),
    schedule: nonEmptyString.optional(),
    every: durationValue.optional(),
    jitter: durationValue.optional(),
    /** Daily UTC window in which a due rotation may start, e.g. "01:00-05:00". */
    window: nonEmptyString.optional(),
    generate: GenerateSchema.optional(),
    target: RotationTargetSchema.optional(),
  })
  .strict();

/** Defaults and bounds of `generate` per kind: [default length, minimum, maximum]. */
const GENERATE_LENGTH: Record<GenerateSpec['kind'], readonly [number, number, number]> = {
  password: [32, 12, 1024],
  token: [32, 16, 512],
  keypair: [3072, 2048, 8192],
};
const GENERATE_FORMATS: Record<GenerateSpec['kind'], readonly string[]> = {
  password: [],
  token: ['hex', 'base64', 'base64url'],
  keypair: ['ed25519', 'rsa'],
};

function parseWindow(value: string): { startMinute: number; endMinute: number } | undefined {
  const m = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$/.exec(value);
  if (m === null) return undefined;
  const startMinute = Number(m[1]) * 60 + Number(m[2]);
  const endMinute = Number(m[3]) * 60 + Number(m[4]);
  return startMinute === endMinute ? undefined : { startMinute, endMinute };
}

export const PolicyFileSchema = z
  .object({
    version: z.literal(1).optional(),
    // `null` lets an author comment out every entry of a section without deleting the key.
    secrets: z.record(z.string(), SecretSchema).nullable().optional(),
    grants: z.array(GrantSchema).nullable().optional(),
    rotations: z.array(RotationSchema).nullable().optional(),
    zuul: ZuulSectionSchema.nullable().optional(),
  })
  .strict();

type PolicyFileData = z.infer<typeof PolicyFileSchema>;
type SecretData = z.infer<typeof SecretSchema>;

function at(location: SourceLocation): string {
  return `${location.file}:${location.line}:${location.column}`;
}

function unknownKeyHint(path: DataPath): string {
  const last = path[path.length - 1];
  if (last === 'match') return ` (fields: ${MATCH_FIELDS.join(', ')})`;
  if (path.length === 2 && path[0] === 'secrets') return ` (kinds: ${SECRET_KINDS.join(', ')})`;
  return '';
}

interface GrantEntry {
  readonly grant: Grant;
  readonly allowLocations: readonly SourceLocation[];
}

/** What a file adds to a policy set: the parts `policySetOf` joins. */
export interface FileParts {
  readonly secrets: readonly SecretDefinition[];
  readonly grants: readonly Grant[];
  readonly rotations: readonly Rotation[];
  readonly configProjects: ReadonlyMap<string, ReadonlySet<string>>;
}

/** What one valid-so-far file contributes; cross-file checks run on the union. */
export interface FileContribution extends FileParts {
  readonly declaredSecrets: readonly string[];
  /** Where each grant's `allow` entries stand, parallel to `grants`, for cross-file problems. */
  readonly allowLocations: readonly (readonly SourceLocation[])[];
}

class FileChecker {
  readonly problems: PolicyProblem[] = [];

  constructor(
    private readonly source: ParsedSource,
    private readonly opts: LoadOptions,
  ) {}

  private report(location: SourceLocation, message: string): void {
    this.problems.push({ ...location, message });
  }

  private check(path: DataPath, problem: string | undefined): void {
    if (problem !== undefined)
      this.report(this.source.locate(path), `${formatPath(path)}: ${problem}`);
  }

  run(data: PolicyFileData): FileContribution {
    const declaredSecrets: string[] = [];
    const secrets: SecretDefinition[] = [];
    for (const [name, raw] of Object.entries(data.secrets ?? {})) {
      declaredSecrets.push(name);
      const secret = this.secret(name, raw);
      if (secret !== undefined) secrets.push(secret);
    }
    const grants: Grant[] = [];
    const allowLocations: (readonly SourceLocation[])[] = [];
    for (const [i, raw] of (data.grants ?? []).entries()) {
      const entry = this.grant(i, raw);
      if (entry === undefined) continue;
      grants.push(entry.grant);
      allowLocations.push(entry.allowLocations);
    }
    const rotations: Rotation[] = [];
    for (const [i, raw] of (data.rotations ?? []).entries()) {
      const rotation = this.rotation(i, raw);
      if (rotation !== undefined) rotations.push(rotation);
    }
    const configProjects =
      data.zuul === null || data.zuul === undefined
        ? new Map<string, Set<string>>()
        : readZuulSection(data.zuul, (path, problem) => this.check(path, problem));
    return { declaredSecrets, secrets, grants, allowLocations, rotations, configProjects };
  }

  private secret(name: string, raw: SecretData): SecretDefinition | undefined {
    const location = this.source.locateKey(['secrets'], name);
    const before = this.problems.length;
    if (!NAME_PATTERN.test(name)) {
      this.report(location, `secret name '${show(name)}' is invalid: ${NAME_RULE}`);
    }
    const kinds = SECRET_KINDS.filter((k) => raw[k] !== undefined);
    if (kinds.length !== 1) {
      const found = kinds.length === 0 ? 'none' : kinds.join(' and ');
      this.report(
        location,
        `secret '${show(name)}' must set exactly one of ${SECRET_KINDS.join(', ')} (found ${found})`,
      );
      return undefined;
    }
    const supported = this.opts.supportedKinds ?? SECRET_KINDS;
    const base = ['secrets', name];
    let source: SecretSource | undefined;
    if (raw.kv !== undefined) {
      const kv = raw.kv;
      this.check([...base, 'kv', 'mount'], checkMount(kv.mount));
      this.check([...base, 'kv', 'path'], checkPathTemplate(kv.path));
      if (kv.keys !== undefined) this.noDuplicates([...base, 'kv', 'keys'], kv.keys, 'key');
      source =
        kv.keys === undefined
          ? { kind: 'kv', mount: kv.mount, path: kv.path }
          : { kind: 'kv', mount: kv.mount, path: kv.path, keys: Object.freeze([...kv.keys]) };
    } else if (raw.database !== undefined) {
      const db = raw.database;
      this.check([...base, 'database', 'mount'], checkMount(db.mount));
      this.check([...base, 'database', 'role'], checkRole(db.role));
      source = { kind: 'database', mount: db.mount, role: db.role };
    } else if (raw.pki !== undefined) {
      const pki = raw.pki;
      this.check([...base, 'pki', 'mount'], checkMount(pki.mount));
      this.check([...base, 'pki', 'role'], checkRole(pki.role));
      this.check([...base, 'pki', 'commonName'], checkCommonNameTemplate(pki.commonName));
      source = { kind: 'pki', mount: pki.mount, role: pki.role, commonName: pki.commonName };
    } else if (raw.token !== undefined) {
      const policies = raw.token.policies;
      policies.forEach((p, j) => {
        if (hasControlCharacter(p)) {
          this.check([...base, 'token', 'policies', j], 'contains a control character');
        }
      });
      this.noDuplicates([...base, 'token', 'policies'], policies, 'policy');
      source = { kind: 'token', policies: Object.freeze([...policies]) };
    }
    if (source === undefined) return undefined;
    if (!supported.includes(source.kind)) {
      this.report(
        this.source.locateKey(base, source.kind),
        `secret kind '${source.kind}' is not supported by this broker version`,
      );
    }
    const render = this.render(base, raw.render, source);
    if (this.problems.length > before) return undefined;
    return Object.freeze({
      name,
      source: Object.freeze(source),
      location,
      ...(render === undefined ? {} : { render }),
    });
  }

  /** A `render:` declaration; ready files are made from KV data only (ADR 0015). */
  private render(base: DataPath, raw: SecretData['render'], source: SecretSource) {
    if (raw === undefined) return undefined;
    if (source.kind !== 'kv') {
      this.check(
        [...base, 'render'],
        `ready files are made from kv secrets only (this one is ${source.kind})`,
      );
      return undefined;
    }
    return readRenderSpec(raw, source.keys, (path, problem) =>
      this.check([...base, 'render', ...path], problem),
    );
  }

  private noDuplicates(path: DataPath, values: readonly string[], what: string): void {
    const seen = new Set<string>();
    values.forEach((v, j) => {
      if (seen.has(v)) this.check([...path, j], `${what} '${show(v)}' is listed twice`);
      seen.add(v);
    });
  }

  private grant(i: number, raw: z.infer<typeof GrantSchema>): GrantEntry | undefined {
    const base = ['grants', i];
    const before = this.problems.length;
    if (!NAME_PATTERN.test(raw.name)) {
      this.check([...base, 'name'], `grant name '${show(raw.name)}' is invalid: ${NAME_RULE}`);
    }

    const match: Partial<Record<MatchField, readonly string[]>> = {};
    const matchLocations: Partial<Record<MatchField, SourceLocation>> = {};
    for (const field of MATCH_FIELDS) {
      const value = raw.match[field];
      if (value === undefined) continue;
      matchLocations[field] = this.source.locate([...base, 'match', field]);
      const patterns = typeof value === 'string' ? [value] : value;
      patterns.forEach((pattern, j) => {
        const path =
          typeof value === 'string' ? [...base, 'match', field] : [...base, 'match', field, j];
        if (field === 'issuer' && pattern.includes('*')) {
          // Issuers are a short configured list of URLs: exact values keep grants unambiguous.
          this.check(path, "issuers are matched exactly: '*' is not allowed");
          return;
        }
        const compiled = compileGlob(pattern);
        if (!compiled.ok) this.check(path, compiled.reason);
      });
      match[field] = Object.freeze([...patterns]);
    }
    if (Object.keys(match).length === 0) {
      this.check(
        [...base, 'match'],
        'must list at least one field (an empty match would grant every job)',
      );
    }
    this.check(...unboundBuildFields(base, match, this.opts.issuers));

    this.noDuplicates([...base, 'allow'], raw.allow, 'secret');
    const allowLocations = raw.allow.map((_, j) => this.source.locate([...base, 'allow', j]));

    const max = this.opts.maxTtlSeconds;
    let ttlSeconds = max;
    if (raw.ttl !== undefined) {
      const parsed = parseDuration(raw.ttl);
      if (parsed === undefined) {
        this.check(
          [...base, 'ttl'],
          `'${show(String(raw.ttl))}' is not a positive duration (e.g. 900, 15m, 1h30m)`,
        );
      } else if (parsed > max) {
        this.check(
          [...base, 'ttl'],
          `${formatDuration(parsed)} exceeds the maximum of ${formatDuration(max)} (config maxTtlSeconds)`,
        );
      } else {
        ttlSeconds = parsed;
      }
    }

    if (this.problems.length > before) return undefined;
    const grant: Grant = Object.freeze({
      name: raw.name,
      match: Object.freeze(match),
      matchLocations: Object.freeze(matchLocations),
      allow: Object.freeze([...raw.allow]),
      ttlSeconds,
      wrap: raw.wrap ?? 'optional',
      location: this.source.locate(base),
    });
    return { grant, allowLocations };
  }

  private rotation(i: number, raw: z.infer<typeof RotationSchema>): Rotation | undefined {
    const base = ['rotations', i];
    const before = this.problems.length;
    if ((raw.schedule === undefined) === (raw.every === undefined)) {
      this.check(base, 'set exactly one of schedule or every');
    }
    const duration = (key: 'every' | 'jitter'): number | undefined => {
      const value = raw[key];
      if (value === undefined) return undefined;
      const seconds = parseDuration(value);
      if (seconds === undefined) {
        this.check(
          [...base, key],
          `'${show(String(value))}' is not a positive duration (e.g. 7d, 12h)`,
        );
      }
      return seconds;
    };
    const everySeconds = duration('every');
    const jitterSeconds = duration('jitter');
    if (raw.schedule !== undefined && hasControlCharacter(raw.schedule)) {
      this.check([...base, 'schedule'], 'contains a control character');
    } else if (raw.schedule !== undefined && !isCronExpression(raw.schedule)) {
      this.check(
        [...base, 'schedule'],
        `'${show(raw.schedule)}' is not a cron expression (5 or 6 fields, or @daily and the like)`,
      );
    }
    const window = raw.window === undefined ? undefined : parseWindow(raw.window);
    if (raw.window !== undefined && window === undefined) {
      this.check([...base, 'window'], `'${show(raw.window)}' is not a UTC window like 01:00-05:00`);
    }

    let target: RotationTarget = { kind: 'kv' };
    const check = (path: DataPath, problem: string | undefined) => this.check(path, problem);
    const targets = Object.values(raw.target ?? {}).filter((t) => t !== undefined).length;
    if (targets > 1) {
      this.check(
        [...base, 'target'],
        'set one of postgres, staticRole, applicationCredential or command',
      );
    } else if (raw.target?.applicationCredential) {
      const at = [...base, 'target', 'applicationCredential'];
      target = applicationCredentialTarget(check, at, raw.target.applicationCredential);
      if (everySeconds !== undefined && everySeconds <= target.graceSeconds) {
        // No new run starts while the previous one waits for its grace to retire a value.
        this.check([...base, 'every'], 'must be longer than the grace period');
      }
    } else if (raw.target?.command) {
      target = commandTarget(check, [...base, 'target', 'command'], raw.target.command);
    } else if (raw.target?.postgres) {
      const { admin, users } = raw.target.postgres;
      if (users !== undefined && users[0] === users[1]) {
        this.check([...base, 'target', 'postgres', 'users'], 'the two logins must differ');
      }
      target = { kind: 'postgres', admin, ...(users ? { users: Object.freeze([...users]) } : {}) };
    } else if (raw.target?.staticRole) {
      const { mount, role } = raw.target.staticRole;
      this.check([...base, 'target', 'staticRole', 'mount'], checkMount(mount));
      this.check([...base, 'target', 'staticRole', 'role'], checkRole(role));
      target = { kind: 'static-role', mount, role };
    }

    if (target.kind === 'static-role') {
      if (raw.generate !== undefined)
        this.check([...base, 'generate'], 'a static role gets its password from OpenBao');
    } else if (raw.secret === undefined) {
      this.check(base, 'set secret: the KV secret to rotate');
    }
    let generate: GenerateSpec | undefined;
    if (targets > 1) {
      // Which target was meant is unclear: its generate rules are not checked.
    } else if (target.kind === 'application-credential') {
      if (raw.generate !== undefined) {
        this.check([...base, 'generate'], "the broker makes an application credential's secret");
      }
    } else if (target.kind === 'command' && target.steps.create !== undefined) {
      if (raw.generate !== undefined) {
        this.check([...base, 'generate'], 'set one of generate or a create command');
      }
    } else if (target.kind !== 'static-role') {
      const g =
        raw.generate ??
        (target.kind === 'postgres' ? { key: 'password', kind: 'password' as const } : undefined);
      if (g === undefined) this.check(base, 'set generate: how the new value is made');
      else generate = this.generate([...base, 'generate'], g, target);
    }

    if (this.problems.length > before) return undefined;
    const name =
      target.kind === 'static-role'
        ? `static-role:${target.mount}/${target.role}`
        : (raw.secret as string);
    return Object.freeze({
      name,
      ...(raw.secret === undefined ? {} : { secret: raw.secret }),
      ...(raw.schedule === undefined ? {} : { schedule: raw.schedule }),
      ...(everySeconds === undefined ? {} : { everySeconds }),
      ...(jitterSeconds === undefined ? {} : { jitterSeconds }),
      ...(window === undefined ? {} : { window: Object.freeze(window) }),
      ...(generate === undefined ? {} : { generate }),
      target: Object.freeze(target),
      location: this.source.locate(base),
    });
  }

  private generate(
    path: DataPath,
    raw: z.infer<typeof GenerateSchema>,
    target: RotationTarget,
  ): GenerateSpec | undefined {
    const before = this.problems.length;
    const [def, min, max] = GENERATE_LENGTH[raw.kind];
    const length = raw.length ?? def;
    if (length < min || length > max) {
      this.check([...path, 'length'], `must be between ${min} and ${max} for ${raw.kind}`);
    }
    if (raw.alphabet !== undefined) {
      if (raw.kind !== 'password') this.check([...path, 'alphabet'], 'applies to passwords only');
      const chars = [...raw.alphabet];
      if (chars.length < 2 || new Set(chars).size !== chars.length) {
        this.check([...path, 'alphabet'], 'must list at least two distinct characters, each once');
      } else if (chars.some((c) => hasControlCharacter(c))) {
        this.check([...path, 'alphabet'], 'contains a control character');
      }
    }
    const formats = GENERATE_FORMATS[raw.kind];
    if (raw.format !== undefined && !formats.includes(raw.format)) {
      this.check(
        [...path, 'format'],
        formats.length === 0
          ? `does not apply to ${raw.kind}`
          : `must be one of ${formats.join(', ')}`,
      );
    }
    if (target.kind === 'postgres' && (raw.kind !== 'password' || raw.key !== 'password')) {
      this.check(
        path,
        'a PostgreSQL login rotates its password: use { key: password, kind: password }',
      );
    }
    if (this.problems.length > before) return undefined;
    return Object.freeze({
      key: raw.key,
      kind: raw.kind,
      length,
      ...(raw.alphabet === undefined ? {} : { alphabet: raw.alphabet }),
      ...(raw.format === undefined ? {} : { format: raw.format }),
    });
  }
}

/**
 * A grant that matches build facts where no binding supplies them would never match:
 * refused, naming the issuers to bind or to leave out of the grant.
 */
function unboundBuildFields(
  base: DataPath,
  match: Partial<Record<MatchField, readonly string[]>>,
  issuers: IssuerBindings | undefined,
): [DataPath, string | undefined] {
  const field = BUILD_MATCH_FIELDS.find((f) => match[f] !== undefined);
  if (field === undefined || issuers === undefined) return [base, undefined];
  const reached = match.issuer ?? issuers.configured;
  const unbound = reached.filter((issuer) => !issuers.bound.has(issuer));
  if (unbound.length === 0) return [[...base, 'match', field], undefined];
  return [
    [...base, 'match', field],
    `${field} is known only through the build binding, but issuer ${unbound.map((i) => `'${show(i)}'`).join(', ')} has none configured (set buildBinding on it, or pin match.issuer to bound issuers)`,
  ];
}

function compareProblems(order: ReadonlyMap<string, number>) {
  return (a: PolicyProblem, b: PolicyProblem): number =>
    (order.get(a.file) ?? 0) - (order.get(b.file) ?? 0) || a.line - b.line || a.column - b.column;
}

/**
 * What a file parsed before (the same ParsedSource, parseSource's per-file reuse)
 * contributed, with the options it was checked under: a reload checks only changed
 * files again, and their unchanged grants stay the same objects, whose compiled
 * matchers decide.ts keeps. Released with the parsed file.
 */
const checkedFiles = new WeakMap<
  ParsedSource,
  {
    readonly optionsKey: string;
    readonly contribution: FileContribution;
    readonly problems: readonly PolicyProblem[];
  }
>();

/** Every option FileChecker reads: a file checked under other options is checked again. */
function checkOptionsKey(opts: LoadOptions): string {
  const { maxTtlSeconds, supportedKinds = SECRET_KINDS, issuers } = opts;
  const bindings = issuers && [issuers.configured, [...issuers.bound].sort()];
  return JSON.stringify([maxTtlSeconds, supportedKinds, bindings ?? null]);
}

/** Validates policy files given as data (pure). Files are taken in the order given. */
export function parsePolicyFiles(
  files: readonly SourceFile[],
  opts: LoadOptions,
  /** How a file is parsed; the benchmark passes the full parser as its baseline. */
  parse: (file: SourceFile) => ParseSourceResult = parseSource,
): LoadResult {
  return checkPolicyFiles(files, opts, parse).result;
}

/**
 * parsePolicyFiles with what each file contributed: on success, `contributions[k]` is
 * `files[k]`'s (the reload worker hands them over file by file, load-worker.ts).
 */
export function checkPolicyFiles(
  files: readonly SourceFile[],
  opts: LoadOptions,
  parse: (file: SourceFile) => ParseSourceResult = parseSource,
): { readonly result: LoadResult; readonly contributions: readonly FileContribution[] } {
  const problems: PolicyProblem[] = [];
  const contributions: FileContribution[] = [];
  const optionsKey = checkOptionsKey(opts);
  for (const file of files) {
    const parsed = parse(file);
    if (!parsed.ok) {
      problems.push(...parsed.problems);
      continue;
    }
    const source = parsed.source;
    const checked = checkedFiles.get(source);
    if (checked !== undefined && checked.optionsKey === optionsKey) {
      contributions.push(checked.contribution);
      problems.push(...checked.problems);
      continue;
    }
    const data = source.data === null || source.data === undefined ? {} : source.data;
    const result = PolicyFileSchema.safeParse(data, { reportInput: true });
    if (!result.success) {
      problems.push(
        ...issuesToProblems(result.error.issues, source, {
          unknownKeyHint,
          topLevel: 'a mapping with secrets, grants and rotations',
        }),
      );
      continue;
    }
    const checker = new FileChecker(source, opts);
    const contribution = checker.run(result.data);
    contributions.push(contribution);
    problems.push(...checker.problems);
    checkedFiles.set(source, { optionsKey, contribution, problems: checker.problems });
  }

  const declared = new Set(contributions.flatMap((c) => c.declaredSecrets));
  const secrets = new Map<string, SecretDefinition>();
  const grantNames = new Map<string, SourceLocation>();
  const rotated = new Map<string, SourceLocation>();

  for (const c of contributions) {
    for (const secret of c.secrets) {
      const first = secrets.get(secret.name);
      if (first === undefined) secrets.set(secret.name, secret);
      else {
        problems.push({
          ...secret.location,
          message: `secret '${secret.name}' is defined twice: here and at ${at(first.location)}`,
        });
      }
    }
  }
  for (const c of contributions) {
    c.grants.forEach((grant, k) => {
      const allowLocations = c.allowLocations[k] ?? [];
      const first = grantNames.get(grant.name);
      if (first === undefined) grantNames.set(grant.name, grant.location);
      else {
        problems.push({
          ...grant.location,
          message: `grant '${grant.name}' is defined twice: here and at ${at(first)}`,
        });
      }
      grant.allow.forEach((name, j) => {
        if (declared.has(name)) return;
        const location = allowLocations[j] ?? grant.location;
        problems.push({
          ...location,
          message: `grant '${grant.name}' allows unknown secret '${show(name)}'`,
        });
      });
    });
    for (const rotation of c.rotations) {
      if (rotation.secret !== undefined) {
        const secret = secrets.get(rotation.secret);
        if (!declared.has(rotation.secret)) {
          problems.push({
            ...rotation.location,
            message: `rotation names unknown secret '${show(rotation.secret)}'`,
          });
        } else if (secret !== undefined && secret.source.kind !== 'kv') {
          problems.push({
            ...rotation.location,
            message: `rotation of '${show(rotation.secret)}': only KV secrets are rotated (this one is ${secret.source.kind})`,
          });
        } else if (secret?.source.kind === 'kv' && secret.source.path.includes('{')) {
          problems.push({
            ...rotation.location,
            message: `rotation of '${show(rotation.secret)}': its path has placeholders, so it names no single entry`,
          });
        }
      }
      const login =
        rotation.target.kind === 'postgres'
          ? { role: 'admin', name: rotation.target.admin }
          : rotation.target.kind === 'application-credential'
            ? { role: 'rotator', name: rotation.target.rotator }
            : undefined;
      if (login !== undefined) {
        const secret = secrets.get(login.name);
        if (!declared.has(login.name)) {
          problems.push({
            ...rotation.location,
            message: `rotation of '${show(rotation.name)}': ${login.role} names unknown secret '${show(login.name)}'`,
          });
        } else if (secret !== undefined && secret.source.kind !== 'kv') {
          problems.push({
            ...rotation.location,
            message: `rotation of '${show(rotation.name)}': ${login.role} '${show(login.name)}' must be a KV secret`,
          });
        } else if (login.name === rotation.secret) {
          problems.push({
            ...rotation.location,
            message: `rotation of '${show(rotation.name)}': ${login.role} must be another secret than the one rotated`,
          });
        }
      }
      const first = rotated.get(rotation.name);
      if (first === undefined) rotated.set(rotation.name, rotation.location);
      else {
        problems.push({
          ...rotation.location,
          message: `secret '${show(rotation.name)}' has a second rotation: here and at ${at(first)}`,
        });
      }
    }
  }

  if (problems.length > 0) {
    const order = new Map(files.map((f, i) => [f.name, i]));
    const result: LoadResult = {
      ok: false,
      problems: Object.freeze(problems.sort(compareProblems(order))),
    };
    return { result, contributions };
  }
  const set = policySetOf(
    files.map((f) => f.name),
    contributions,
  );
  return { result: { ok: true, set }, contributions };
}

/**
 * The set made of valid files' parts, in file order: the one way a PolicySet is put
 * together, whether the parts were checked here or handed over by the reload worker.
 */
export function policySetOf(files: readonly string[], parts: readonly FileParts[]): PolicySet {
  const secrets = new Map<string, SecretDefinition>();
  const grants: Grant[] = [];
  const rotations: Rotation[] = [];
  for (const c of parts) {
    for (const secret of c.secrets) if (!secrets.has(secret.name)) secrets.set(secret.name, secret);
    for (const grant of c.grants) grants.push(grant);
    for (const rotation of c.rotations) rotations.push(rotation);
  }
  const zuul = mergeZuulFacts(...parts.map((c) => c.configProjects));
  return Object.freeze({
    secrets,
    grants: Object.freeze(grants),
    rotations: Object.freeze(rotations),
    files: Object.freeze([...files]),
    ...(zuul === undefined ? {} : { zuul }),
  });
}

/**
 * Loads every top-level `*.yaml`/`*.yml` file of `dir` (not `tests/`). A missing
 * or empty directory is a problem, never an exception: the caller keeps serving
 * its previous set.
 */
export async function loadPolicyDir(dir: string, opts: LoadOptions): Promise<LoadResult> {
  const contents = await readYamlDirectory(dir, 'policy directory');
  const result = parsePolicyFiles(contents.files, opts);
  if (contents.problems.length === 0) return result;
  const problems = [...contents.problems, ...(result.ok ? [] : result.problems)];
  return { ok: false, problems: Object.freeze(problems) };
}

/** `file:line:col: message`; problems about a whole directory have no position (line 0). */
export function formatProblem(p: PolicyProblem): string {
  return p.line > 0 ? `${p.file}:${p.line}:${p.column}: ${p.message}` : `${p.file}: ${p.message}`;
}
