/** What a job receives per secret (api.md `POST /v1/fetch`): a value or a wrapping token. */
export interface SecretValue {
  readonly data: Readonly<Record<string, unknown>>;
  readonly version: number | null;
  readonly lease: { readonly id: string; readonly ttl: number; readonly renewable: boolean } | null;
  readonly expiresAt: string | null;
}

export interface WrappedSecret {
  readonly wrapped: { readonly token: string; readonly ttl: number; readonly expiresAt: string };
}

export type DeliveredSecret = SecretValue | WrappedSecret;
