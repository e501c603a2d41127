/**
 * Loads the broker configuration once at start: YAML → schema → deeply frozen object.
 * Errors name the key path and the reason, never the value (a misplaced token must not
 * end up in a log).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { z } from 'zod';
import { type Config, ConfigSchema } from './schema.js';

const MAX_CONFIG_BYTES = 256 * 1024;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`invalid configuration ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
  switch (issue.code) {
    case 'unrecognized_keys':
      return `${where}: unknown key(s) ${issue.keys.join(', ')}`;
    case 'invalid_type':
      return `${where}: expected ${issue.expected}`;
    case 'invalid_value':
      return `${where}: must be one of ${issue.values.map(String).join(', ')}`;
    case 'too_small':
      return `${where}: must be at least ${String(issue.minimum)}`;
    case 'too_big':
      return `${where}: must be at most ${String(issue.maximum)}`;
    default:
      // Our own refinement messages describe the rule, never the value.
      return `${where}: ${issue.code === 'custom' ? issue.message : issue.code.replaceAll('_', ' ')}`;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Validates an already parsed document. */
export function parseConfig(document: unknown, source = '(inline)'): Config {
  const result = ConfigSchema.safeParse(document);
  if (!result.success) throw new ConfigError(source, result.error.issues.map(describeIssue));
  return deepFreeze(result.data);
}

export function loadConfigFile(file: string): Config {
  let text: string;
  try {
    const bytes = readFileSync(file);
    if (bytes.length > MAX_CONFIG_BYTES)
      throw new ConfigError(file, [`file is larger than ${MAX_CONFIG_BYTES} bytes`]);
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [code ? `cannot read file (${code})` : 'file is not valid UTF-8']);
  }
  let document: unknown;
  try {
    document = parse(text, { uniqueKeys: true, maxAliasCount: 20 });
  } catch (error) {
    // yaml's messages quote source lines, which could hold a value: keep only the position.
    const pos = (error as { linePos?: { line: number; col: number }[] }).linePos?.[0];
    throw new ConfigError(file, [
      pos ? `YAML syntax error at line ${pos.line}, column ${pos.col}` : 'YAML syntax error',
    ]);
  }
  return parseConfig(document, file);
}
