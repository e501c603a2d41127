/**
 * One YAML source file (a policy file or a policy test file), decoded and parsed
 * defensively, with a way back from a data path to the line and column of the
 * node that holds it, so every problem points at what the author wrote.
 */

import type { Document } from 'yaml';
import { isMap, isNode, isScalar, LineCounter, parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { showName } from './characters.js';
import type { PolicyProblem, SourceLocation } from './types.js';

/** Policy files are small and reviewed by people: anything larger is a mistake or an attack. */
export const MAX_FILE_BYTES = 256 * 1024;
/** Anchors are handy for repeated match lists; more than this many uses smells of an alias bomb. */
export const MAX_ALIAS_COUNT = 50;

export interface SourceFile {
  readonly name: string;
  readonly text: string | Uint8Array;
}

export type DataPath = readonly (string | number)[];

export interface ParsedSource {
  readonly name: string;
  readonly data: unknown;
  /** Location of the node at `path`, or of its nearest ancestor that exists in the file. */
  locate(path: DataPath): SourceLocation;
  /** Location of the key `key` in the mapping at `path` (falls back to the mapping). */
  locateKey(path: DataPath, key: string): SourceLocation;
}

export type ParseSourceResult =
  | { readonly ok: true; readonly source: ParsedSource }
  | { readonly ok: false; readonly problems: readonly PolicyProblem[] };

const YAML_MESSAGES: Partial<Record<string, string>> = {
  MULTIPLE_DOCS: "file holds more than one YAML document ('---'); use one document per file",
  TAB_AS_INDENT: 'tabs are not allowed for indentation',
};

function fileProblem(file: string, message: string): ParseSourceResult {
  return { ok: false, problems: [{ file, line: 1, column: 1, message }] };
}

function decode(file: SourceFile): { ok: true; text: string } | { ok: false; message: string } {
  if (typeof file.text === 'string') {
    // UTF-16 length never exceeds UTF-8 length, so the cheap test comes first.
    if (
      file.text.length > MAX_FILE_BYTES ||
      new TextEncoder().encode(file.text).length > MAX_FILE_BYTES
    ) {
      return { ok: false, message: `file is larger than ${MAX_FILE_BYTES / 1024} KiB` };
    }
    return { ok: true, text: file.text };
  }
  if (file.text.byteLength > MAX_FILE_BYTES) {
    return { ok: false, message: `file is larger than ${MAX_FILE_BYTES / 1024} KiB` };
  }
  try {
    return { ok: true, text: new TextDecoder('utf-8', { fatal: true }).decode(file.text) };
  } catch {
    return { ok: false, message: 'file is not valid UTF-8' };
  }
}

/**
 * Duplicate keys, found by walking the document instead of with yaml's own
 * `uniqueKeys` check, so the message can name the key and point at its second use.
 */
function duplicateKeys(doc: Document): { readonly key: string; readonly offset: number }[] {
  const found: { key: string; offset: number }[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        if (seen.has(key)) found.push({ key, offset: pair.key.range?.[0] ?? 0 });
        seen.add(key);
      }
    },
  });
  return found;
}

export function parseSource(file: SourceFile): ParseSourceResult {
  const decoded = decode(file);
  if (!decoded.ok) return fileProblem(file.name, decoded.message);
  const text = decoded.text;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const at = (offset: number): { line: number; column: number } => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };

  const problems: PolicyProblem[] = [...doc.errors, ...doc.warnings].map((e) => ({
    file: file.name,
    ...at(e.pos[0]),
    message: YAML_MESSAGES[e.code] ?? `YAML: ${e.message}`,
  }));
  if (doc.errors.length === 0) {
    for (const { key, offset } of duplicateKeys(doc)) {
      problems.push({
        file: file.name,
        ...at(offset),
        message: `duplicate key '${showName(key)}'`,
      });
    }
  }
  if (problems.length > 0) return { ok: false, problems };

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    // yaml throws ReferenceError for excessive or unresolvable aliases.
    const message =
      e instanceof Error && /alias/i.test(e.message)
        ? `too many YAML alias expansions (at most ${MAX_ALIAS_COUNT} are allowed)`
        : 'YAML document could not be converted to data';
    return fileProblem(file.name, message);
  }

  const locateNode = (path: DataPath): SourceLocation => {
    for (let n = path.length; n >= 0; n--) {
      const offset = nodeOffset(doc, path.slice(0, n));
      if (offset !== undefined) return { file: file.name, ...at(offset) };
    }
    return { file: file.name, line: 1, column: 1 };
  };

  return {
    ok: true,
    source: {
      name: file.name,
      data,
      locate: locateNode,
      locateKey(path, key) {
        const parent = path.length === 0 ? doc.contents : doc.getIn(path, true);
        if (isMap(parent)) {
          for (const pair of parent.items) {
            if (isScalar(pair.key) && String(pair.key.value) === key && pair.key.range) {
              return { file: file.name, ...at(pair.key.range[0]) };
            }
          }
        }
        return locateNode(path);
      },
    },
  };
}

function nodeOffset(doc: Document, path: DataPath): number | undefined {
  const node = path.length === 0 ? doc.contents : doc.getIn(path, true);
  // Past an alias the data path no longer follows the text: getIn stops at the alias itself.
  return isNode(node) && node.range ? node.range[0] : undefined;
}

/** `['grants', 0, 'match']` → `grants[0].match`, for messages. */
export function formatPath(path: DataPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

function describeType(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  return `a ${typeof input}`;
}

const EXPECTED_NAMES: Partial<Record<string, string>> = {
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
};

export interface IssueWording {
  /** Appended to "unknown key" messages, e.g. the list of allowed keys at that path. */
  readonly unknownKeyHint?: (path: DataPath) => string;
  /** What the whole file must be, for a file of the wrong shape. */
  readonly topLevel: string;
}

/** Turns zod issues into problems at the nodes they concern. */
export function issuesToProblems(
  issues: readonly z.core.$ZodIssue[],
  source: ParsedSource,
  wording: IssueWording,
): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    const where = formatPath(path);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const scope = where === '' ? 'at the top level' : `in ${where}`;
        problems.push({
          ...source.locateKey(path, key),
          message: `unknown key '${showName(key)}' ${scope}${wording.unknownKeyHint?.(path) ?? ''}`,
        });
      }
      continue;
    }
    let message: string;
    if (issue.code === 'invalid_type' && path.length === 0) {
      message = `the file must be ${wording.topLevel}, got ${describeType(issue.input)}`;
    } else if (issue.code === 'invalid_type' && issue.input === undefined) {
      const parent = path.length > 1 ? ` in ${formatPath(path.slice(0, -1))}` : '';
      message = `missing required key '${String(path[path.length - 1])}'${parent}`;
    } else if (issue.code === 'invalid_type') {
      const expected = EXPECTED_NAMES[issue.expected] ?? issue.expected;
      message = `${where}: expected ${expected}, got ${describeType(issue.input)}`;
    } else {
      message = `${where === '' ? 'file' : where}: ${issue.message}`;
    }
    problems.push({ ...source.locate(path), message });
  }
  return problems;
}
