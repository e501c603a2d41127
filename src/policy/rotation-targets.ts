/**
 * The rotation targets that reach outside OpenBao (docs/rotation.md): OpenStack
 * application credentials on Keystone and executables named by the security admins
 * (`command`). Kept apart from load.ts: their schemas, bounds and checks are theirs alone.
 */
import path from 'node:path';
import { z } from 'zod';
import { hasControlCharacter, showName as show } from './characters.js';
import { formatDuration, parseDuration } from './duration.js';
import type { DataPath } from './source.js';
import type {
  CommandStep,
  CommandTarget,
  Grant,
  KeystoneAccessRule,
  PolicySet,
  RotationTarget,
  SourceLocation,
} from './types.js';

const nonEmptyString = z.string().min(1, 'must not be empty');
const durationValue = z.union([z.number(), z.string()], {
  error: 'must be a duration such as 900, 15m or 1h30m',
});

/** Keystone's access-rule methods (keystone/application_credential/schema.py). */
const ACCESS_RULE_METHODS = ['HEAD', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

export const ApplicationCredentialTargetSchema = z
  .object({
    /** KV secret with the rotator's own Keystone login (never in policy files). */
    rotator: nonEmptyString,
    /** How long the previous credential keeps working after the promotion. */
    grace: durationValue.optional(),
    /** Each new credential expires this long after it is made (Keystone enforces it). */
    expiresAfter: durationValue.optional(),
    /** Start of every credential's name; a UTC time and a random suffix follow. */
    namePrefix: nonEmptyString.optional(),
    /** Roles the credential carries (default: all the rotator's roles on its project). */
    roles: z.array(nonEmptyString).min(1, 'must list at least one role').optional(),
    accessRules: z
      .array(
        z
          .object({
            service: nonEmptyString,
            method: z.enum(ACCESS_RULE_METHODS),
            path: nonEmptyString,
          })
          .strict(),
      )
      .min(1, 'must list at least one rule')
      .optional(),
  })
  .strict();

const commandLine = z.array(nonEmptyString).min(1, 'must name an executable');

export const CommandTargetSchema = z
  .object({
    create: commandLine.optional(),
    set: commandLine,
    test: commandLine,
    finish: commandLine.optional(),
    rollback: commandLine.optional(),
    /** How the step gets its input: on stdin (default) or in a 0600 file. */
    input: z.enum(['stdin', 'file']).optional(),
    timeout: durationValue.optional(),
    /** Literal, non-secret variables for the executables (e.g. a registry's address). */
    env: z.record(z.string(), z.string()).optional(),
  })
  .strict();

/** Default grace: the broker's default maximum TTL, the longest a fetched value lives. */
export const DEFAULT_GRACE_SECONDS = 3600;
/** Keystone caps names at 255 characters; the time and suffix take 24. */
const MAX_NAME_PREFIX = 200;
export const DEFAULT_COMMAND_TIMEOUT_SECONDS = 60;
const MAX_COMMAND_TIMEOUT_SECONDS = 3600;
/** Environment names the broker sets itself, or that change how executables are found. */
const RESERVED_ENV = /^(ZSB_|PATH$|LD_|HOME$)/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

type Check = (path: DataPath, problem: string | undefined) => void;

function seconds(
  check: Check,
  at: DataPath,
  value: number | string | undefined,
): number | undefined {
  if (value === undefined) return undefined;
  const parsed = parseDuration(value);
  if (parsed === undefined) {
    check(at, `'${show(String(value))}' is not a positive duration (e.g. 7d, 12h)`);
  }
  return parsed;
}

export function applicationCredentialTarget(
  check: Check,
  at: DataPath,
  raw: z.infer<typeof ApplicationCredentialTargetSchema>,
): Extract<RotationTarget, { kind: 'application-credential' }> {
  // `grace: 0` deletes the previous credential at once (jobs holding it fail).
  const graceSeconds =
    raw.grace === 0 ? 0 : (seconds(check, [...at, 'grace'], raw.grace) ?? DEFAULT_GRACE_SECONDS);
  const expiresAfterSeconds = seconds(check, [...at, 'expiresAfter'], raw.expiresAfter);
  if (expiresAfterSeconds !== undefined && expiresAfterSeconds <= graceSeconds) {
    check(
      [...at, 'expiresAfter'],
      'must be longer than the grace period, or a credential expires while jobs still use it',
    );
  }
  if (raw.namePrefix !== undefined) {
    if (raw.namePrefix.length > MAX_NAME_PREFIX || !/^[A-Za-z0-9._-]+$/.test(raw.namePrefix)) {
      check([...at, 'namePrefix'], `use up to ${MAX_NAME_PREFIX} letters, digits, '.', '_' or '-'`);
    }
  }
  raw.accessRules?.forEach((rule, i) => {
    if (!rule.path.startsWith('/') || hasControlCharacter(rule.path)) {
      check(
        [...at, 'accessRules', i, 'path'],
        "must start with '/' (a URL path, '*' and '**' allowed)",
      );
    }
  });
  const accessRules: KeystoneAccessRule[] | undefined = raw.accessRules?.map((r) =>
    Object.freeze({ service: r.service, method: r.method, path: r.path }),
  );
  return {
    kind: 'application-credential',
    rotator: raw.rotator,
    graceSeconds,
    ...(expiresAfterSeconds === undefined ? {} : { expiresAfterSeconds }),
    ...(raw.namePrefix === undefined ? {} : { namePrefix: raw.namePrefix }),
    ...(raw.roles === undefined ? {} : { roles: Object.freeze([...raw.roles]) }),
    ...(accessRules === undefined ? {} : { accessRules: Object.freeze(accessRules) }),
  };
}

export function commandTarget(
  check: Check,
  at: DataPath,
  raw: z.infer<typeof CommandTargetSchema>,
): CommandTarget {
  const steps: Partial<Record<CommandStep, readonly string[]>> = {};
  for (const step of ['create', 'set', 'test', 'finish', 'rollback'] as const) {
    const argv = raw[step];
    if (argv === undefined) continue;
    const [executable = ''] = argv;
    // Policy files name exactly what runs: no lookup in PATH, no working directory.
    if (!path.isAbsolute(executable) || path.normalize(executable) !== executable) {
      check([...at, step, 0], 'must be an absolute, normalised path to the executable');
    }
    argv.forEach((arg, j) => {
      if (hasControlCharacter(arg)) check([...at, step, j], 'contains a control character');
    });
    steps[step] = Object.freeze([...argv]);
  }
  const timeoutSeconds =
    seconds(check, [...at, 'timeout'], raw.timeout) ?? DEFAULT_COMMAND_TIMEOUT_SECONDS;
  if (timeoutSeconds > MAX_COMMAND_TIMEOUT_SECONDS) {
    check([...at, 'timeout'], `must be at most ${MAX_COMMAND_TIMEOUT_SECONDS / 60} minutes`);
  }
  for (const [name, value] of Object.entries(raw.env ?? {})) {
    if (!ENV_NAME.test(name) || RESERVED_ENV.test(name)) {
      check(
        [...at, 'env', name],
        'not a usable variable name (ZSB_*, PATH, HOME, LD_* are reserved)',
      );
    } else if (hasControlCharacter(value)) {
      check([...at, 'env', name], 'contains a control character');
    }
  }
  return {
    kind: 'command',
    steps: Object.freeze(steps) as CommandTarget['steps'],
    input: raw.input ?? 'stdin',
    timeoutSeconds,
    env: Object.freeze({ ...(raw.env ?? {}) }),
  };
}

export interface RotationWarning {
  readonly rotation: string;
  readonly kind: 'short-grace';
  readonly message: string;
  readonly location: SourceLocation;
}

/**
 * Application-credential rotations whose grace period is shorter than the longest TTL of a
 * grant allowing the secret: a job that fetched the previous credential just before the
 * promotion would lose it while it still runs.
 */
export function rotationWarnings(set: PolicySet): RotationWarning[] {
  const warnings: RotationWarning[] = [];
  for (const rotation of set.rotations) {
    const target = rotation.target;
    if (target.kind !== 'application-credential' || rotation.secret === undefined) continue;
    const secret = rotation.secret;
    let longest: Grant | undefined;
    for (const grant of set.grants) {
      if (!grant.allow.includes(secret)) continue;
      if (longest === undefined || grant.ttlSeconds > longest.ttlSeconds) longest = grant;
    }
    if (longest === undefined || target.graceSeconds >= longest.ttlSeconds) continue;
    warnings.push({
      rotation: rotation.name,
      kind: 'short-grace',
      message: `grace ${formatDuration(target.graceSeconds)} is shorter than the ttl ${formatDuration(longest.ttlSeconds)} of grant '${longest.name}': a job that fetched the previous credential just before a rotation loses it while it runs; set grace to at least ${formatDuration(longest.ttlSeconds)}`,
      location: rotation.location,
    });
  }
  return warnings;
}
