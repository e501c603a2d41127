/**
 * The narrow interface the rest of the broker uses to talk to OpenBao. Only
 * src/openbao/client.ts implements it against a real server; unit tests fake it.
 */

export interface KvEntry {
  readonly data: Readonly<Record<string, unknown>>;
  readonly version: number;
}

export interface WrappedResponse {
  /** Single-use wrapping token: a secret in itself. */
  readonly token: string;
  readonly accessor: string;
  readonly ttlSeconds: number;
  readonly creationTime: string;
}

export type OpenBaoHealth =
  | {
      readonly status: 'ok';
      readonly version: string;
      /** With several addresses: every node's state, lag and autopilot (ADR 0012). */
      readonly cluster?: { readonly status: 'ok' | 'degraded'; readonly detail: string };
    }
  | { readonly status: 'sealed' | 'standby' | 'uninitialized'; readonly version?: string }
  | { readonly status: 'unreachable'; readonly detail: string };

export interface KvReader {
  /** Reads the latest (or given) version of a KV v2 entry; `null` when it does not exist. */
  kvRead(mount: string, path: string, options?: { version?: number }): Promise<KvEntry | null>;
  /** The same read, response-wrapped by OpenBao for `wrapTtlSeconds`. */
  kvReadWrapped(mount: string, path: string, wrapTtlSeconds: number): Promise<WrappedResponse>;
  /** Wraps data the broker holds (`sys/wrapping/wrap`), e.g. selected keys of an entry. */
  wrapData(
    data: Readonly<Record<string, unknown>>,
    wrapTtlSeconds: number,
  ): Promise<WrappedResponse>;
}

export interface KvWriter {
  /** Writes a KV v2 entry; `cas` 0 = create only. Returns the new version. */
  kvWrite(
    mount: string,
    path: string,
    data: Readonly<Record<string, unknown>>,
    options?: { cas?: number },
  ): Promise<{ version: number }>;
}

export interface TokenAdmin {
  /** Revokes a token (also a wrapping token) by its accessor. */
  revokeAccessor(accessor: string): Promise<void>;
}

export interface HealthProbe {
  health(): Promise<OpenBaoHealth>;
}

export type OpenBao = KvReader & KvWriter & TokenAdmin & HealthProbe;

/** A database static role's current credentials (`database/static-creds/:role`). */
export interface StaticCredentials {
  readonly username: string;
  readonly password: string;
  /** `last_vault_rotation`: changes with every rotation. */
  readonly lastRotation: string;
}

/** Calls the rotation providers need beyond KV (see src/rotation/providers/). */
export interface RotationTargets {
  /** `POST :mount/rotate-role/:role`: OpenBao sets a new password on the database. */
  databaseRotateRole(mount: string, role: string): Promise<void>;
  databaseStaticCreds(mount: string, role: string): Promise<StaticCredentials>;
  /** Registers a secret-id we generated (`custom-secret-id`); returns its accessor. */
  appRoleAddSecretId(mount: string, role: string, secretId: string): Promise<{ accessor: string }>;
  /** Whether a secret-id is (still) registered for the role. */
  appRoleHasSecretId(mount: string, role: string, secretId: string): Promise<boolean>;
  /** Destroys a secret-id; tokens already issued with it stay valid. Absent = done. */
  appRoleDestroySecretId(mount: string, role: string, secretId: string): Promise<void>;
  /** Logs in with AppRole; the caller revokes the token when it only tested the login. */
  appRoleLogin(
    mount: string,
    roleId: string,
    secretId: string,
  ): Promise<{ readonly token: string; readonly accessor: string; readonly ttlSeconds: number }>;
}

/** A lease (or a token) as OpenBao reports it. */
export interface IssuedLease {
  readonly id: string;
  readonly ttlSeconds: number;
  readonly renewable: boolean;
}

/** What a dynamic issuance returned: the data for the job, or a wrapping of it. */
export type Issued =
  | {
      readonly wrapped: false;
      readonly data: Readonly<Record<string, unknown>>;
      readonly lease: IssuedLease | null;
    }
  | { readonly wrapped: true; readonly wrap: WrappedResponse };

export interface BuildToken {
  /** The per-build token: secret, kept in memory only. */
  readonly token: string;
  readonly accessor: string;
  readonly ttlSeconds: number;
}

/**
 * Dynamic issuance. Every issuing call runs with the per-build token, so that revoking
 * that token revokes every lease and child token of the build. None of these calls is
 * ever repeated by the client: a timed-out create may have succeeded.
 */
export interface DynamicIssuer {
  /** An orphan token from the broker's token role, limited to `policies`. */
  createBuildToken(
    role: string,
    policies: readonly string[],
    ttlSeconds: number,
  ): Promise<BuildToken>;
  databaseCreds(
    buildToken: string,
    mount: string,
    role: string,
    wrapTtlSeconds?: number,
  ): Promise<Issued>;
  pkiIssue(
    buildToken: string,
    mount: string,
    role: string,
    commonName: string,
    ttlSeconds: number,
    wrapTtlSeconds?: number,
  ): Promise<Issued>;
  /** A child of the build token with exactly `policies`. */
  childToken(
    buildToken: string,
    policies: readonly string[],
    ttlSeconds: number,
    wrapTtlSeconds?: number,
  ): Promise<Issued>;
  pkiRevoke(mount: string, serialNumber: string): Promise<void>;
  /**
   * Unwraps a wrapping token the broker created and never handed out (a failed request's),
   * so that what it holds can be revoked. Single use; not repeated.
   */
  unwrap(wrapToken: string): Promise<Issued>;
  /** Revokes one lease (`sys/leases/revoke`). */
  revokeLease(leaseId: string): Promise<void>;
}

/** Cluster identity, from `sys/health` (any unsealed node answers). */
export interface ClusterInfo {
  readonly clusterId: string;
  readonly clusterName: string;
  readonly version: string;
}

/** Why OpenBao refused a snapshot restore (openbao-ha.md §2.4), in our words. */
export type SnapshotRestoreRejection =
  | 'wrong-seal'
  | 'unreadable'
  | 'altered'
  | 'permission-denied'
  | 'rejected';

/**
 * Raft snapshots, streamed to and from files (src/openbao/snapshot.ts): they are larger than
 * any JSON answer the client reads into memory.
 */
export interface RaftSnapshots {
  /** `GET sys/storage/raft/snapshot` into `destination` (not ended on failure), size-capped. */
  saveSnapshot(
    destination: import('node:stream').Writable,
  ): Promise<{ readonly bytes: number; readonly sha256: string }>;
  /**
   * `POST sys/storage/raft/snapshot` (no -force: a snapshot of another seal is refused) with
   * `token`, which needs sudo on that path; to `address` when given. Sent once, never repeated.
   */
  restoreSnapshot(file: string, token: string, address?: string): Promise<void>;
  clusterInfo(): Promise<ClusterInfo>;
}
