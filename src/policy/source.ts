/**
 * One YAML source file (a policy file or a policy test file), decoded and parsed
 * defensively, with a way back from a data path to the line and column of the
 * node that holds it, so every problem points at what the author wrote.
 */

import type { Document } from 'yaml';
import { isMap, isNode, isScalar, LineCounter, parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { showName } from './characters.js';
import { parseCommonYaml } from './fast-yaml.js';
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

/**
 * Files parsed before, by name, with their text: a reload parses only the files that
 * changed (the data is read, never changed, by its users). Bounded like everything else.
 */
const MAX_REUSED_FILES = 1000;
const parsedBefore = new Map<
  string,
  { readonly text: string; readonly result: ParseSourceResult }
>();

export function parseSource(file: SourceFile): ParseSourceResult {
  const decoded = decode(file);
  if (!decoded.ok) return fileProblem(file.name, decoded.message);
  const text = decoded.text;
  const before = parsedBefore.get(file.name);
  if (before !== undefined && before.text === text) return before.result;
  const result = parseText(file.name, text);
  parsedBefore.delete(file.name);
  if (parsedBefore.size >= MAX_REUSED_FILES) {
    const oldest = parsedBefore.keys().next().value;
    if (oldest !== undefined) parsedBefore.delete(oldest);
  }
  parsedBefore.set(file.name, { text, result });
  return result;
}

/**
 * The common subset of YAML goes through the fast parser (fast-yaml.ts, ADR 0016);
 * line and column of a node are found by the full parser only when first asked for, so
 * a valid file is parsed once, quickly. Every other file, and every file with an error,
 * goes through the `yaml` library, which words the errors.
 *
 * The `yaml` document behind the positions is held weakly: a file kept for reuse (and
 * the locations of its grants in a serving set) keeps its text and data, not a document
 * tree of about 30 times the file's size. Positions read after it was collected parse
 * the file again; within one synchronous pass (a load, a report) it stays alive.
 */
function parseText(name: string, text: string): ParseSourceResult {
  const fast = parseCommonYaml(text);
  if (fast === undefined) {
    const result = parseWithPositions(name, text);
    if (!result.ok) return result;
    return {
      ok: true,
      source: { name, data: result.source.data, ...lazyPositions(name, text, result.source) },
    };
  }
  return { ok: true, source: { name, data: fast.data, ...lazyPositions(name, text) } };
}

/**
 * Locations in a file that the `yaml` library finds only when a line or column is first
 * read, from a document held weakly (`parsed`, if the file was parsed with positions
 * already). The reload worker's results get their locations again this way on the
 * serving thread, from the same text (ADR 0018).
 */
export function lazyPositions(
  name: string,
  text: string,
  parsed?: ParsedSource,
): Pick<ParsedSource, 'locate' | 'locateKey'> {
  let held = parsed === undefined ? undefined : new WeakRef(parsed);
  const positions = (): ParsedSource => {
    let full = held?.deref();
    if (full === undefined) {
      const result = parseWithPositions(name, text);
      // The subset is chosen so that yaml accepts whatever the fast path does.
      full = result.ok ? result.source : withoutPositions(name);
      held = new WeakRef(full);
    }
    return full;
  };
  return {
    locate: (path) => new LazyLocation(name, positions, path, undefined),
    locateKey: (path, key) => new LazyLocation(name, positions, path, key),
  };
}

function withoutPositions(name: string): ParsedSource {
  const start = (): SourceLocation => ({ file: name, line: 1, column: 1 });
  return { name, data: undefined, locate: start, locateKey: start };
}

/**
 * A location whose line and column (own, enumerable, like a plain one's: a spread or
 * JSON copies them) are found when first read. A serving set holds one per grant and
 * match field, so it is small: no closures of its own, the accessors are shared.
 */
class LazyLocation implements SourceLocation {
  declare readonly line: number;
  declare readonly column: number;
  readonly file: string;
  readonly #positions: () => ParsedSource;
  readonly #path: DataPath;
  readonly #key: string | undefined;
  #found: SourceLocation | undefined;

  static readonly #accessors: PropertyDescriptorMap = {
    line: {
      enumerable: true,
      get(this: LazyLocation) {
        return this.#resolve().line;
      },
    },
    column: {
      enumerable: true,
      get(this: LazyLocation) {
        return this.#resolve().column;
      },
    },
  };

  constructor(
    file: string,
    positions: () => ParsedSource,
    path: DataPath,
    key: string | undefined,
  ) {
    this.file = file;
    this.#positions = positions;
    this.#path = path;
    this.#key = key;
    Object.defineProperties(this, LazyLocation.#accessors);
  }

  #resolve(): SourceLocation {
    if (this.#found === undefined) {
      const source = this.#positions();
      this.#found =
        this.#key === undefined
          ? source.locate(this.#path)
          : source.locateKey(this.#path, this.#key);
    }
    return this.#found;
  }
}

/** Forgets the files parsed before (tests and benchmarks measure a first load with it). */
export function forgetParsedFiles(): void {
  parsedBefore.clear();
}

/**
 * The `yaml` library's parse of a file, with positions: what every file went through
 * before the fast path; kept callable on its own for the tests and the benchmark that
 * compare the two.
 */
export function parseSourceWithPositions(file: SourceFile): ParseSourceResult {
  const decoded = decode(file);
  if (!decoded.ok) return fileProblem(file.name, decoded.message);
  return parseWithPositions(file.name, decoded.text);
}

function parseWithPositions(name: string, text: string): ParseSourceResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const at = (offset: number): { line: number; column: number } => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };

  const problems: PolicyProblem[] = [...doc.errors, ...doc.warnings].map((e) => ({
    file: name,
    ...at(e.pos[0]),
    message: YAML_MESSAGES[e.code] ?? `YAML: ${e.message}`,
  }));
  if (doc.errors.length === 0) {
    for (const { key, offset } of duplicateKeys(doc)) {
      problems.push({
        file: name,
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
    return fileProblem(name, message);
  }

  const locateNode = (path: DataPath): SourceLocation => {
    for (let n = path.length; n >= 0; n--) {
      const offset = nodeOffset(doc, path.slice(0, n));
      if (offset !== undefined) return { file: name, ...at(offset) };
    }
    return { file: name, line: 1, column: 1 };
  };

  return {
    ok: true,
    source: {
      name,
      data,
      locate: locateNode,
      locateKey(path, key) {
        const parent = path.length === 0 ? doc.contents : doc.getIn(path, true);
        if (isMap(parent)) {
          for (const pair of parent.items) {
            if (isScalar(pair.key) && String(pair.key.value) === key && pair.key.range) {
              return { file: name, ...at(pair.key.range[0]) };
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
