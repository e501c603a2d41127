/**
 * Ready files (docs/ready-files.md, ADR 0015): how a secret's fields become the file a
 * job's tool reads. Declared per secret in the policies (`render:`), produced by the
 * broker at fetch time. Pure data; no I/O anywhere in `render/`.
 */

export const RENDER_FORMATS = [
  'clouds.yaml',
  'docker-config.json',
  'kubeconfig',
  'netrc',
  'template',
] as const;
export type RenderFormat = (typeof RENDER_FORMATS)[number];

/** One piece of a parsed template: literal text, or a field whose value goes in verbatim. */
export type TemplatePart =
  | { readonly text: string }
  | { readonly field: string; readonly line: number; readonly column: number };

/** A validated `render:` declaration. */
export interface RenderSpec {
  readonly format: RenderFormat;
  /** The format's options (cloud, authUrl, registry …), each checked at policy load. */
  readonly options: Readonly<Record<string, string>>;
  /**
   * Every field the file is made of → the secret's key that holds it (the format's default
   * names, changed by `fields:`; for a template, the fields it names, each to itself).
   */
  readonly fields: Readonly<Record<string, string>>;
  /** Fields the file can do without (kubeconfig's CA); all others must be present. */
  readonly optionalFields: readonly string[];
  /** Only for `template`. */
  readonly template?: readonly TemplatePart[];
}

/** What the fetch answer carries: the file's text, ready to be written as it is. */
export interface RenderedFile {
  readonly format: RenderFormat;
  readonly content: string;
}

/** The rendered text may not be larger than this (UTF-8 bytes). */
export const MAX_RENDERED_BYTES = 1024 * 1024;
/** A template may not be larger than this (characters). */
export const MAX_TEMPLATE_CHARS = 64 * 1024;
