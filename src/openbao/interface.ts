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
  | { readonly status: 'ok'; readonly version: string }
  | { readonly status: 'sealed' | 'standby' | 'uninitialized'; readonly version?: string }
  | { readonly status: 'unreachable'; readonly detail: string };

export interface KvReader {
  /** Reads the latest (or given) version of a KV v2 entry; `null` when it does not exist. */
  kvRead(mount: string, path: string, options?: { version?: number }): Promise<KvEntry | null>;
  /** The same read, response-wrapped by OpenBao for `wrapTtlSeconds`. */
  kvReadWrapped(mount: string, path: string, wrapTtlSeconds: number): Promise<WrappedResponse>;
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
