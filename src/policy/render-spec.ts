/**
 * A secret's `render:` declaration (docs/ready-files.md): its schema and its checks at
 * policy load. What each format needs is render/formats.ts's; this file checks that a
 * declaration asks for something the format has and that the secret can deliver every
 * field the file needs (its `kv.keys`, when it lists them).
 */
import { z } from 'zod';
import { FORMATS } from '../render/formats.js';
import { parseTemplate, templateFields } from '../render/template.js';
import { MAX_TEMPLATE_CHARS, RENDER_FORMATS, type RenderSpec } from '../render/types.js';
import { showName as show } from './characters.js';
import type { DataPath } from './source.js';

const OPTION_NAMES = [...new Set(Object.values(FORMATS).flatMap((f) => Object.keys(f.options)))];
const option = z.string().min(1, 'must not be empty');

export const RenderSchema = z
  .object({
    format: z.enum(RENDER_FORMATS),
    ...Object.fromEntries(OPTION_NAMES.map((name) => [name, option.optional()])),
    /** The format's field → the secret's key that holds it. */
    fields: z.record(z.string(), option).optional(),
  })
  .strict();

export type RenderData = z.infer<typeof RenderSchema>;

/**
 * `keys` are the secret's `kv.keys` (undefined: the whole entry, any key may be there).
 * `report` takes a path below `render`.
 */
export function readRenderSpec(
  raw: RenderData,
  keys: readonly string[] | undefined,
  report: (path: DataPath, message: string) => void,
): RenderSpec | undefined {
  const def = FORMATS[raw.format];
  const given = raw as Record<string, unknown>;
  let failed = false;
  const problem = (path: DataPath, message: string) => {
    failed = true;
    report(path, message);
  };

  const options: Record<string, string> = {};
  for (const name of OPTION_NAMES) {
    const value = given[name];
    if (typeof value !== 'string') continue;
    const known = def.options[name];
    if (known === undefined) {
      const own = Object.keys(def.options).join(', ');
      problem([name], `does not apply to format '${raw.format}' (its options: ${own})`);
      continue;
    }
    const wrong = known.check(value);
    if (wrong !== undefined) problem([name], wrong);
    options[name] = value;
  }
  for (const [name, known] of Object.entries(def.options)) {
    if (known.required && options[name] === undefined && given[name] === undefined) {
      problem([], `format '${raw.format}' needs ${name}: ${known.about}`);
    }
  }

  // No prototype: a template may name a key `__proto__`, which must stay an own field.
  const fields: Record<string, string> = Object.create(null);
  const optionalFields: string[] = [];
  let template: RenderSpec['template'];
  if (raw.format === 'template') {
    if (raw.fields !== undefined) {
      problem(['fields'], "a template names the secret's keys itself: {{ key }}");
    }
    const text = typeof given.template === 'string' ? given.template : '';
    if (text.length > MAX_TEMPLATE_CHARS) {
      problem(['template'], `is longer than ${MAX_TEMPLATE_CHARS / 1024} KiB`);
    } else if (text !== '') {
      const parsed = parseTemplate(text);
      if (!parsed.ok) problem(['template'], parsed.reason);
      else if (templateFields(parsed.parts).length === 0) {
        problem(['template'], "names no field: use {{ key }} for the secret's values");
      } else {
        template = Object.freeze([...parsed.parts]);
        for (const f of templateFields(parsed.parts)) fields[f] = f;
      }
    }
  } else {
    for (const [field, key] of Object.entries(raw.fields ?? {})) {
      if (def.fields[field] === undefined) {
        const own = Object.keys(def.fields).join(', ');
        problem(
          ['fields', field],
          `'${show(field)}' is not a field of ${raw.format} (its fields: ${own})`,
        );
      }
      if (key.trim() === '') problem(['fields', field], 'must name a key of the secret');
    }
    for (const [field, { required }] of Object.entries(def.fields)) {
      fields[field] = raw.fields?.[field] ?? field;
      if (!required) optionalFields.push(field);
    }
  }

  if (keys !== undefined) {
    for (const [field, key] of Object.entries(fields)) {
      if (keys.includes(key)) continue;
      const remapped = raw.fields?.[field] !== undefined;
      // An optional field the keys leave out is simply not in the file, unless it was asked for.
      if (optionalFields.includes(field) && !remapped) continue;
      const where: DataPath =
        raw.format === 'template' ? ['template'] : remapped ? ['fields', field] : ['format'];
      const what =
        raw.format === 'template'
          ? `the template names field '${show(field)}'`
          : `${raw.format} needs field '${show(field)}'${remapped ? ` (key '${show(key)}')` : ''}`;
      problem(where, `${what}, which this secret cannot have: its kv.keys are ${keys.join(', ')}`);
    }
  }

  if (failed) return undefined;
  return Object.freeze({
    format: raw.format,
    options: Object.freeze(options),
    fields: Object.freeze(fields),
    optionalFields: Object.freeze(optionalFields),
    ...(template === undefined ? {} : { template }),
  });
}

/** One line for `zsb policy explain`: the format and its options (no secret is in them). */
export function describeRender(spec: RenderSpec): string {
  if (spec.format === 'template') {
    return `template of ${Object.keys(spec.fields).join(', ')}`;
  }
  const options = Object.entries(spec.options).map(([k, v]) => `${k} ${v}`);
  const remapped = Object.entries(spec.fields)
    .filter(([field, key]) => field !== key)
    .map(([field, key]) => `${field} from ${key}`);
  const details = [...options, ...remapped];
  return details.length === 0 ? spec.format : `${spec.format} (${details.join(', ')})`;
}
