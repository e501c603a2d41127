/**
 * Renders a secret's data into its ready file. All or nothing: every field the file needs
 * is looked up and checked before any text is made, and a failure is a value-free reason
 * (field and key names, never a value), so the job never gets half a file.
 */
import { FORMATS, RenderError } from './formats.js';
import { fillTemplate } from './template.js';
import { MAX_RENDERED_BYTES, type RenderedFile, type RenderSpec } from './types.js';

export type RenderResult =
  | { readonly ok: true; readonly file: RenderedFile }
  | { readonly ok: false; readonly reason: string };

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : typeof value;
}

/** The secret's value of one field as text; numbers and booleans as JSON writes them. */
function fieldText(spec: RenderSpec, data: Readonly<Record<string, unknown>>, field: string) {
  const key = spec.fields[field] ?? field;
  const named = key === field ? `'${field}'` : `'${field}' (key '${key}')`;
  if (!Object.hasOwn(data, key)) {
    if (spec.optionalFields.includes(field)) return undefined;
    throw new RenderError(`field ${named} is missing from the secret`);
  }
  const value = data[key];
  if (typeof value === 'string') return value;
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') {
    return String(value);
  }
  throw new RenderError(`field ${named} is ${describe(value)}, not text`);
}

export function renderFile(
  spec: RenderSpec,
  data: Readonly<Record<string, unknown>>,
): RenderResult {
  try {
    const values = new Map<string, string | undefined>();
    for (const field of Object.keys(spec.fields)) values.set(field, fieldText(spec, data, field));
    const value = (field: string) => values.get(field);
    const content =
      spec.template === undefined
        ? FORMATS[spec.format].render(spec.options, value)
        : fillTemplate(spec.template, (field) => value(field) ?? '');
    if (Buffer.byteLength(content, 'utf8') > MAX_RENDERED_BYTES) {
      throw new RenderError(`the file would be larger than ${MAX_RENDERED_BYTES / 1024} KiB`);
    }
    return { ok: true, file: { format: spec.format, content } };
  } catch (error) {
    if (error instanceof RenderError) return { ok: false, reason: error.message };
    throw error;
  }
}
