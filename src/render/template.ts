/**
 * The logic-less template language of `format: template`: literal text and `{{ field }}`,
 * nothing else. No sections, conditions, loops, partials, filters, escaping or lookups
 * beyond the secret's own top-level fields, so a template can neither run code nor reach
 * a file or the network, and what it produces is visible in the template itself. Every
 * `{{` must open a placeholder: a stray one is an error at policy load, never text that a
 * reader takes for a placeholder (ADR 0015 says why this is not mustache).
 */
import type { TemplatePart } from './types.js';

/** A field name: the characters KV keys of Zuul secrets and tools' files use. */
export const FIELD_NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const PLACEHOLDER = /\{\{\s*([^{}\s]*)\s*\}\}/y;

export type ParsedTemplate =
  | { readonly ok: true; readonly parts: readonly TemplatePart[] }
  | { readonly ok: false; readonly reason: string };

function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: (before[before.length - 1]?.length ?? 0) + 1 };
}

export function parseTemplate(text: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  let from = 0;
  for (;;) {
    const open = text.indexOf('{{', from);
    if (open === -1) break;
    if (open > from) parts.push({ text: text.slice(from, open) });
    const at = position(text, open);
    PLACEHOLDER.lastIndex = open;
    const m = PLACEHOLDER.exec(text);
    const name = m?.[1] ?? '';
    if (m === null || !FIELD_NAME.test(name)) {
      return {
        ok: false,
        reason: `template line ${at.line}, column ${at.column}: '{{' must open a placeholder {{ field }} (field: letters, digits, '_', '.', '-'); templates have no other syntax`,
      };
    }
    parts.push({ field: name, ...at });
    from = open + m[0].length;
  }
  if (from < text.length) parts.push({ text: text.slice(from) });
  return { ok: true, parts };
}

/** The distinct fields a template names, in order of first use. */
export function templateFields(parts: readonly TemplatePart[]): string[] {
  const fields: string[] = [];
  for (const part of parts) {
    if ('field' in part && !fields.includes(part.field)) fields.push(part.field);
  }
  return fields;
}

/** Fills the template; `value` returns each field's text (it throws when it cannot). */
export function fillTemplate(
  parts: readonly TemplatePart[],
  value: (field: string) => string,
): string {
  return parts.map((part) => ('field' in part ? value(part.field) : part.text)).join('');
}
