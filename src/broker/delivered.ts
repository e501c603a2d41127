import type { RenderedFile, RenderFormat } from '../render/types.js';

/** What a job receives per secret (api.md `POST /v1/fetch`): a value or a wrapping token. */
export interface SecretValue {
  readonly data: Readonly<Record<string, unknown>>;
  readonly version: number | null;
  readonly lease: { readonly id: string; readonly ttl: number; readonly renewable: boolean } | null;
  readonly expiresAt: string | null;
  /** Only for a secret that declares `render:`: its ready file (docs/ready-files.md). */
  readonly file?: RenderedFile;
}

export interface WrappedSecret {
  readonly wrapped: { readonly token: string; readonly ttl: number; readonly expiresAt: string };
  /**
   * Only for a secret that declares `render:`: the file's format. The content is inside the
   * wrapping, which then unwraps to `{ data, file: { format, content } }`.
   */
  readonly file?: { readonly format: RenderFormat };
}

export type DeliveredSecret = SecretValue | WrappedSecret;
