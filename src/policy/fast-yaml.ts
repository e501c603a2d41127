/**
 * The fast path of policy parsing (ADR 0016): the common subset of YAML that policy
 * files are written in, read from js-yaml's event stream into the same data the `yaml`
 * library's `parseDocument(...).toJS()` gives. Anything outside the subset, or anything
 * where the two libraries could disagree, returns `undefined` and the caller parses
 * the file with the `yaml` library as before, which also reports every error with its
 * line and column. So the fast path only ever decides how fast a file is read, never
 * what it means or which message a bad file gets.
 *
 * The subset: one document without directives or `---`; block and single-line flow
 * mappings and sequences; single-line plain, single-quoted and double-quoted (without
 * escapes) scalars; printable ASCII and newlines only. Not in it (fallback): tabs, CR,
 * non-ASCII text, anchors, aliases, tags, block scalars, multi-line scalars and flow
 * collections, comments inside a flow collection, duplicate keys, keys that are not
 * strings or that name an Object.prototype property, `<<` (a merge key in YAML 1.1),
 * lines starting with `---` or `...`, `.inf`/`.nan`.
 */
import type { Event, ScalarEvent } from 'js-yaml';
import { EVENT_ID, getScalarValue, parseEvents, SCALAR_STYLE } from 'js-yaml';

const COLLECTION_STYLE_FLOW = 2;
/** yaml warns about implicit keys over 1024 characters; no line of the subset comes close. */
const MAX_LINE = 1000;

/** The `yaml` library's core schema (YAML 1.2), in its own order; `undefined`: not in the subset. */
function resolvePlain(text: string): unknown {
  if (/^(?:~|[Nn]ull|NULL)?$/.test(text)) return null;
  if (/^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/.test(text)) return text[0] === 't' || text[0] === 'T';
  if (/^0o[0-7]+$/.test(text)) return Number.parseInt(text.substring(2), 8);
  if (/^[-+]?[0-9]+$/.test(text)) return Number.parseInt(text, 10);
  if (/^0x[0-9a-fA-F]+$/.test(text)) return Number.parseInt(text.substring(2), 16);
  if (/^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/.test(text)) return undefined;
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/.test(text)) {
    return Number.parseFloat(text);
  }
  if (/^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/.test(text)) return Number.parseFloat(text);
  return text;
}

/** Printable ASCII and `\n` only, and no line longer than MAX_LINE. */
function plainAscii(text: string): boolean {
  let lineStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      if (i - lineStart > MAX_LINE) return false;
      lineStart = i + 1;
    } else if (c < 0x20 || c > 0x7e) return false;
  }
  return text.length - lineStart <= MAX_LINE;
}

/**
 * True when the flow collection opening at `start` closes on the same line, with no
 * comment inside. Quotes are tracked roughly; a misjudgement only means a fallback,
 * because every scalar inside is checked to be single-line as well.
 */
function flowOnOneLine(text: string, start: number): boolean {
  let depth = 0;
  let quote = '';
  for (let i = start; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === '\n') return false;
    if (quote !== '') {
      if (ch === quote) quote = '';
      continue;
    }
    if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '#' && text[i - 1] === ' ') return false;
    else if (ch === '[' || ch === '{') depth++;
    else if (ch === ']' || ch === '}') {
      depth--;
      if (depth === 0) return true;
    }
  }
  return false;
}

class NotInSubset extends Error {}

function scalarValue(text: string, event: ScalarEvent): unknown {
  if (event.anchorStart !== -1 || event.tagStart !== -1) throw new NotInSubset();
  const raw = text.slice(event.valueStart, event.valueEnd);
  if (raw.includes('\n')) throw new NotInSubset();
  if (event.style === SCALAR_STYLE.PLAIN) {
    const value = resolvePlain(raw);
    if (value === undefined) throw new NotInSubset();
    return value;
  }
  if (event.style === SCALAR_STYLE.SINGLE_QUOTED) return getScalarValue(text, event);
  if (event.style === SCALAR_STYLE.DOUBLE_QUOTED && !raw.includes('\\')) return raw;
  throw new NotInSubset();
}

interface Frame {
  readonly value: Record<string, unknown> | unknown[];
  /** For a mapping: the key read and waiting for its value. */
  key: string | undefined;
}

function buildData(text: string, events: readonly Event[]): unknown {
  if (events.length < 2 || events[0]?.type !== EVENT_ID.DOCUMENT) throw new NotInSubset();
  const doc = events[0];
  if (doc.explicitStart || doc.explicitEnd || doc.directives.length > 0) throw new NotInSubset();
  const stack: Frame[] = [];
  let root: unknown;
  let done = false;
  const place = (value: unknown): void => {
    const top = stack[stack.length - 1];
    if (top === undefined) {
      if (done) throw new NotInSubset();
      root = value;
      done = true;
    } else if (Array.isArray(top.value)) {
      top.value.push(value);
    } else if (top.key === undefined) {
      // A key: only strings, so the JS object key is exactly what yaml makes of it.
      if (
        typeof value !== 'string' ||
        value === '<<' ||
        value in top.value ||
        value in Object.prototype
      ) {
        throw new NotInSubset();
      }
      top.key = value;
    } else {
      top.value[top.key] = value;
      top.key = undefined;
    }
  };
  for (let i = 1; i < events.length; i++) {
    const event = events[i] as Event;
    switch (event.type) {
      case EVENT_ID.SCALAR:
        place(scalarValue(text, event));
        break;
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE: {
        if (event.anchorStart !== -1 || event.tagStart !== -1) throw new NotInSubset();
        if (event.style === COLLECTION_STYLE_FLOW && !flowOnOneLine(text, event.start)) {
          throw new NotInSubset();
        }
        const top = stack[stack.length - 1];
        // A collection as a mapping key is not in the subset.
        if (top !== undefined && !Array.isArray(top.value) && top.key === undefined) {
          throw new NotInSubset();
        }
        const value = event.type === EVENT_ID.MAPPING ? {} : [];
        place(value);
        stack.push({ value, key: undefined });
        break;
      }
      case EVENT_ID.POP: {
        if (stack.length === 0) {
          if (i !== events.length - 1) throw new NotInSubset(); // a second document follows
          break;
        }
        const frame = stack.pop() as Frame;
        if (frame.key !== undefined) throw new NotInSubset();
        break;
      }
      default:
        // Aliases, and a second document.
        throw new NotInSubset();
    }
  }
  if (!done || stack.length > 0) throw new NotInSubset();
  return root;
}

/**
 * The data of `text` when it is in the common subset, else `undefined` (the caller
 * then parses with the `yaml` library). Never throws.
 */
export function parseCommonYaml(text: string): { readonly data: unknown } | undefined {
  if (!plainAscii(text) || /^(?:---|\.\.\.)/m.test(text)) return undefined;
  try {
    return { data: buildData(text, parseEvents(text, {})) };
  } catch {
    // A js-yaml error or a NotInSubset: the full parser decides, and words any error.
    return undefined;
  }
}
