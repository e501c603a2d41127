/**
 * docs/policy.md's field reference and the policy schemas cannot drift apart: every field
 * the loaders accept (policy files and policy test files) has a row in the reference, and
 * every row names a field the loaders accept.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PolicyFileSchema } from '../../../src/policy/load.js';
import { PolicyTestCaseSchema } from '../../../src/policy/test-runner.js';

const DOC = path.resolve(import.meta.dirname, '../../../docs/policy.md');

/** Optional, nullable and defaulted wrappers say nothing about the field's name. */
function unwrapped(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    if (
      current instanceof z.ZodOptional ||
      current instanceof z.ZodNullable ||
      current instanceof z.ZodDefault
    ) {
      current = current.unwrap() as z.ZodType;
    } else {
      return current;
    }
  }
}

/**
 * Dotted paths of every object field: `secrets.<name>.kv.mount`, `grants[].match.tenant`.
 * A record of objects contributes `<name>`; a record or array of scalars is one field.
 */
function fieldPaths(schema: z.ZodType, prefix: string): string[] {
  const inner = unwrapped(schema);
  if (inner instanceof z.ZodObject) {
    return Object.entries(inner.shape as Record<string, z.ZodType>).flatMap(([key, value]) => {
      const here = prefix === '' ? key : `${prefix}.${key}`;
      return [here, ...fieldPaths(value, here)];
    });
  }
  if (inner instanceof z.ZodArray) return fieldPaths(inner.element as z.ZodType, `${prefix}[]`);
  if (inner instanceof z.ZodRecord) {
    return fieldPaths(inner.valueType as z.ZodType, `${prefix}.<name>`).filter(
      (p) => p !== `${prefix}.<name>`,
    );
  }
  return [];
}

/** The first column of every row of the "Field reference" section's tables. */
function documentedPaths(markdown: string): string[] {
  const start = markdown.indexOf('\n## Field reference');
  if (start === -1) return [];
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] ?? '');
}

describe('docs/policy.md field reference', () => {
  const inSchema = [
    ...fieldPaths(PolicyFileSchema, ''),
    ...fieldPaths(PolicyTestCaseSchema, 'tests/*.yaml[]'),
  ].sort();
  const inDocs = documentedPaths(readFileSync(DOC, 'utf8')).sort();

  it('documents every field the loaders accept', () => {
    expect(inSchema.filter((p) => !inDocs.includes(p))).toEqual([]);
  });

  it('documents no field the loaders refuse', () => {
    expect(inDocs.filter((p) => !inSchema.includes(p))).toEqual([]);
  });

  it('finds the fields it is meant to compare (the walker sees nested fields)', () => {
    expect(inSchema).toContain('secrets.<name>.kv.path');
    expect(inSchema).toContain('grants[].match.playbook');
    expect(inSchema).toContain('rotations[].target.postgres.users');
    expect(inSchema).toContain('zuul.configProjects');
    expect(inSchema).toContain('tests/*.yaml[].identity.playbook');
    expect(new Set(inDocs).size).toBe(inDocs.length);
  });
});
