/**
 * The reach report's data model (`zsb policy report --json`): who can reach what, computed
 * from a loaded policy set. The HTML view (html.ts) renders exactly this. It holds names,
 * patterns, paths and schedules from the policy files and rotation times; never a value.
 */
import type { Change } from './coverage.js';

/** Why a grant or an identity deserves a second look. */
export type FlagKind =
  /** From the policy warnings (explain.ts / config-projects.ts). */
  | 'pre-merge'
  | 'weak-narrowing'
  | 'cross-tenant'
  | 'config-project-identity'
  /** Report-only: a match field uses `*` or `**`. */
  | 'broad-glob'
  /** Report-only: the grant can match a config project's (shared) token secret. */
  | 'shared-token-secret';

export interface ReportFlag {
  readonly kind: FlagKind;
  readonly grant: string;
  readonly message: string;
  /** `file:line:col`. */
  readonly location: string;
}

/** Match field → patterns; only the fields a grant lists (absent = any value). */
export type MatchPatterns = Readonly<Record<string, readonly string[]>>;

export interface ReportGrant {
  readonly name: string;
  readonly location: string;
  readonly match: MatchPatterns;
  readonly allow: readonly string[];
  readonly ttlSeconds: number;
  readonly wrap: string;
  /** The identity row this grant's match defines. */
  readonly identity: string;
  readonly flags: readonly ReportFlag[];
}

/** One row of the matrix: the identities one match (of one or more grants) describes. */
export interface ReportIdentity {
  readonly id: string;
  /** Stable across policy versions (the match itself): what the diff keys on. */
  readonly key: string;
  readonly match: MatchPatterns;
  readonly grants: readonly string[];
  readonly flags: readonly ReportFlag[];
  /** Jobs in check/gate (unreviewed code) can hold such an identity. */
  readonly preMerge: boolean;
}

/** One cell: an identity row reaches a secret. */
export interface ReportReach {
  readonly identity: string;
  readonly secret: string;
  /** The deciding grant (largest ttl; first in load order on a tie), as the broker decides. */
  readonly grant: string;
  /** Every grant whose match covers the row and allows the secret, in load order. */
  readonly grants: readonly string[];
  readonly ttlSeconds: number;
  readonly wrap: string;
  /** Reached only through a broader grant, not one defining this row. */
  readonly inherited: boolean;
  readonly preMerge: boolean;
}

export interface ReportSecret {
  readonly name: string;
  readonly kind: string;
  /** Mount and path, role or policies, as written (placeholders unfilled). */
  readonly source: string;
  readonly location: string;
  readonly rotation?: string;
}

export interface ReportRotation {
  readonly name: string;
  readonly secret?: string;
  /** e.g. `cron 0 3 * * 1` or `every 30d`, with jitter and window. */
  readonly schedule: string;
  readonly target: string;
  readonly location: string;
  /** Declared only: the next cron time after the report's time (none for `every`). */
  readonly nextDeclared?: string;
  /** With `--status`: what the broker's OpenBao records. */
  readonly status?: {
    readonly lastSuccess?: string;
    readonly lastOutcome?: string;
    readonly nextRun: string;
    readonly step?: string;
    readonly failures: number;
    readonly lastErrorAt?: string;
  };
}

export interface DiffEntry {
  readonly change: 'added' | 'removed' | Exclude<Change, 'same'>;
  /** Grant name, or `identity → secret` for a reach, or `grant: kind` for a flag. */
  readonly subject: string;
  /** Per aspect, e.g. `pipeline: post → post, check (widened)`. */
  readonly details: readonly string[];
  /** New-report names for the view to link: identity row id and secret. */
  readonly identity?: string;
  readonly secret?: string;
}

export interface ReportDiff {
  /** What the comparison ran against: a git ref or a directory. */
  readonly against: string;
  readonly grants: readonly DiffEntry[];
  readonly reaches: readonly DiffEntry[];
  readonly flags: readonly DiffEntry[];
}

export interface PolicyReport {
  readonly version: 1;
  readonly generatedAt: string;
  readonly policies: { readonly dir: string; readonly files: readonly string[] };
  /** The match fields the loader knows, in its order: the matrix's row columns. */
  readonly matchFields: readonly string[];
  readonly secrets: readonly ReportSecret[];
  readonly grants: readonly ReportGrant[];
  readonly identities: readonly ReportIdentity[];
  readonly reaches: readonly ReportReach[];
  readonly rotations: readonly ReportRotation[];
  /** `declared`: from the policy files; `openbao`: with the broker's recorded state. */
  readonly rotationSource: 'declared' | 'openbao';
  readonly diff?: ReportDiff;
}
