/**
 * Policy data model (shared/design/policy.md, version 1), as loaded and validated.
 * Policies are data: this module and its siblings do no network I/O.
 */

import type { RenderSpec } from '../render/types.js';

/** Where a definition came from, for errors and explain output. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export type SecretSource =
  | {
      readonly kind: 'kv';
      readonly mount: string;
      /** May contain placeholders {tenant} {project} {secret} {job} {build}. */
      readonly path: string;
      /** Optional subset of the entry's keys to deliver. */
      readonly keys?: readonly string[];
    }
  | { readonly kind: 'database'; readonly mount: string; readonly role: string }
  | {
      readonly kind: 'pki';
      readonly mount: string;
      readonly role: string;
      readonly commonName: string;
    }
  | { readonly kind: 'token'; readonly policies: readonly string[] };

export interface SecretDefinition {
  readonly name: string;
  readonly source: SecretSource;
  readonly location: SourceLocation;
  /** The ready file the fetch answer carries besides the data (`render:`, ready-files.md). */
  readonly render?: RenderSpec;
}

export type MatchField =
  | 'issuer'
  | 'tenant'
  | 'project'
  | 'secret'
  | 'pipeline'
  | 'job'
  | 'playbook'
  | BuildMatchField;
/** Fields only the build binding (ADR 0014) knows: zuul-web's record of the running build. */
export type BuildMatchField = 'buildProject' | 'branch' | 'ref';
export const BUILD_MATCH_FIELDS: readonly BuildMatchField[] = ['buildProject', 'branch', 'ref'];
export const MATCH_FIELDS: readonly MatchField[] = [
  'issuer',
  'tenant',
  'project',
  'secret',
  'pipeline',
  'job',
  'playbook',
  ...BUILD_MATCH_FIELDS,
];

export type WrapMode = 'optional' | 'required' | 'never';

export interface Grant {
  readonly name: string;
  /** Absent field = any value. A list means any of its globs. */
  readonly match: Readonly<Partial<Record<MatchField, readonly string[]>>>;
  /** Where each listed match field stands, for warnings that point at it. */
  readonly matchLocations?: Readonly<Partial<Record<MatchField, SourceLocation>>>;
  readonly allow: readonly string[];
  /** Upper bound for anything issued under this grant, in seconds (≤ global max). */
  readonly ttlSeconds: number;
  readonly wrap: WrapMode;
  readonly location: SourceLocation;
}

/** How a rotation makes a new value for one field of a KV secret (policy.md `generate`). */
export interface GenerateSpec {
  /** The one field that is replaced; the secret's other fields are kept. */
  readonly key: string;
  readonly kind: 'password' | 'token' | 'keypair';
  /** Characters (password), bytes of randomness (token) or RSA bits (keypair). */
  readonly length: number;
  /** Password characters; every character is equally likely. */
  readonly alphabet?: string;
  /** token: hex | base64 | base64url; keypair: the algorithm's PEM (ed25519 | rsa). */
  readonly format?: string;
}

/** Where a rotated value must also be set before it is promoted. */
export type RotationTarget =
  /** Only the KV secret: a generated value nobody else has to learn. */
  | { readonly kind: 'kv' }
  /**
   * A PostgreSQL login. `admin` names a KV secret with the connection of a role that may
   * ALTER ROLE. With `users`, two logins alternate: the inactive one is rotated.
   */
  | { readonly kind: 'postgres'; readonly admin: string; readonly users?: readonly string[] }
  /** An OpenBao database static role: OpenBao makes and sets the password itself. */
  | { readonly kind: 'static-role'; readonly mount: string; readonly role: string }
  /**
   * An OpenStack application credential of the user whose Keystone login the `rotator`
   * KV secret holds; the previous credential is deleted `graceSeconds` after promotion.
   */
  | {
      readonly kind: 'application-credential';
      readonly rotator: string;
      readonly graceSeconds: number;
      readonly expiresAfterSeconds?: number;
      readonly namePrefix?: string;
      readonly roles?: readonly string[];
      readonly accessRules?: readonly KeystoneAccessRule[];
    }
  | CommandTarget;

/** Keystone access rule: which API calls an application credential may make. */
export interface KeystoneAccessRule {
  readonly service: string;
  readonly method: string;
  readonly path: string;
}

export type CommandStep = 'create' | 'set' | 'test' | 'finish' | 'rollback';

/** Executables (argv, absolute path first) for the steps of a rotation (docs/rotation.md). */
export interface CommandTarget {
  readonly kind: 'command';
  readonly steps: Readonly<Partial<Record<CommandStep, readonly string[]>>> & {
    readonly set: readonly string[];
    readonly test: readonly string[];
  };
  readonly input: 'stdin' | 'file';
  readonly timeoutSeconds: number;
  /** Literal variables for the executables; the broker's own environment is not passed. */
  readonly env: Readonly<Record<string, string>>;
}

export interface Rotation {
  /** Unique among rotations: the secret's name, or `static-role:<mount>/<role>`. */
  readonly name: string;
  /** The KV secret rotated (absent for a static role). */
  readonly secret?: string;
  readonly schedule?: string;
  readonly everySeconds?: number;
  /** Upper bound of the random delay added to later runs (policy.md: jitter only delays). */
  readonly jitterSeconds?: number;
  /** Rotations start only inside this daily UTC window (minutes after midnight). */
  readonly window?: { readonly startMinute: number; readonly endMinute: number };
  readonly generate?: GenerateSpec;
  readonly target: RotationTarget;
  readonly location: SourceLocation;
}

/**
 * What the policy directory says about the Zuul tenants (`zuul:` in a policy file): which
 * projects are config projects. Used only by `zsb policy check`/`explain` warnings; the
 * broker's decisions never depend on it.
 */
export interface ZuulTenantFacts {
  /** Tenant → canonical names of its config projects. */
  readonly configProjects: ReadonlyMap<string, ReadonlySet<string>>;
}

/** A validated, immutable set of policies: the unit that is swapped atomically on reload. */
export interface PolicySet {
  readonly secrets: ReadonlyMap<string, SecretDefinition>;
  readonly grants: readonly Grant[];
  readonly rotations: readonly Rotation[];
  /** Files the set was loaded from (relative to the policy directory). */
  readonly files: readonly string[];
  /** From `zuul:` sections; absent when no file has one. */
  readonly zuul?: ZuulTenantFacts;
}

/** Stable codes of `zsb policy check`/`explain` warnings (api.md lists the first three). */
export type WarningKind =
  | 'pre-merge'
  | 'weak-narrowing'
  | 'cross-tenant'
  | 'config-project-identity';

export interface PolicyWarning {
  readonly grant: string;
  readonly kind: WarningKind;
  readonly message: string;
  /** Where to look: the grant's field at fault, else the grant. */
  readonly location: SourceLocation;
}

/** The identity fields a policy can see. `JobIdentity` satisfies this structurally. */
export interface PolicySubject {
  readonly issuer: string;
  readonly tenant: string;
  readonly project: string;
  readonly secret: string;
  readonly pipeline: string;
  readonly job: string;
  readonly playbook: string;
  readonly build: string;
  /** From the build binding only (JobIdentity); absent fields match no grant that lists them. */
  readonly buildProject?: string;
  readonly branch?: string;
  readonly ref?: string;
}

/** What one granted secret may be delivered with. */
export interface SecretGrantDecision {
  readonly secret: SecretDefinition;
  /** Name of the deciding grant (most permissive of those that allow it). */
  readonly grant: string;
  readonly ttlSeconds: number;
  readonly wrap: WrapMode;
}

export type Decision =
  | { readonly allowed: true; readonly secrets: ReadonlyMap<string, SecretGrantDecision> }
  | { readonly allowed: false; readonly denied: readonly string[] };

/** One problem found while loading policies: printed as `file:line:col: message`. */
export interface PolicyProblem {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

export type LoadResult =
  | { readonly ok: true; readonly set: PolicySet }
  | { readonly ok: false; readonly problems: readonly PolicyProblem[] };
