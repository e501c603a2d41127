// Match patterns for grant `match` fields (policy.md "Matching").
//
// Syntax, deliberately tiny so a reviewer can read a pattern at a glance:
// - `*` matches any run of characters within one path segment (never `/`),
//   including none: `scs-*` matches `scs-` and `scs-check`;
// - `**` as a whole segment matches any number of whole segments, including
//   none, wherever it stands: `a/**` matches `a`, `a/b`, `a/b/c`; `a/**/b`
//   matches `a/b` and `a/x/y/b`; `**` alone matches any value;
// - every other character is literal: `?`, `[`, `{`, `!`, `(`, `\` have no meaning.
// Patterns are anchored: they match the whole value.
//
// Refused at load: empty patterns, control characters, `**` inside a segment
// (`a**`, `***`: ambiguous to readers), and wildcard patterns with an empty, `.`
// or `..` segment (they could only match malformed values).
//
// A pattern without `*` is compared by plain equality (exact even for values
// such as issuer URLs that contain `//`). A wildcard pattern never matches a
// value that is empty, has an empty, `.` or `..` segment, or contains a control
// character: Zuul mints no such values, so failing closed costs nothing.
//
// Why not picomatch (the obvious library): tried first, and with picomatch 4.0.7
// (1) its backtracking regexes take seconds on short inputs (`*a*a*a*a*b` against
// 200 `a`s: 3 s), and job names are chosen by project authors; (2) some escaped
// patterns never finish compiling (`\ *\(\+\\\\`); (3) its `*`/`**` meaning
// depends on position (`*.*` does not match `a.` but `a/*.*` matches `a/b.`;
// `a/**` matches `a` but `*/**` does not match `a`). The matcher below has no
// regular expressions, runs in O(pattern × value) and is checked against a
// naive reference matcher by a property test.
import { hasControlCharacter } from './characters.js';

export type CompiledGlob =
  | { readonly ok: true; readonly match: (s: string) => boolean }
  | { readonly ok: false; readonly reason: string };

const MAX_PATTERN_LENGTH = 1024;

const DOT = 46;

/** An empty, `.` or `..` segment; walks the string instead of splitting it (runs per decision). */
function hasBadSegment(value: string): boolean {
  let start = 0;
  for (;;) {
    const slash = value.indexOf('/', start);
    const end = slash === -1 ? value.length : slash;
    const length = end - start;
    if (length === 0) return true;
    if (length <= 2 && value.charCodeAt(start) === DOT) {
      if (length === 1 || value.charCodeAt(start + 1) === DOT) return true;
    }
    if (slash === -1) return false;
    start = slash + 1;
  }
}

/** Values a wildcard pattern may match at all (see the module comment). */
function isWellFormedValue(value: string): boolean {
  return value !== '' && !hasControlCharacter(value) && !hasBadSegment(value);
}

/**
 * One segment pattern: the literal chunks around its `*`s. Greedy leftmost search
 * is exact for `*`-only globs: the first chunk must be a prefix, the last a
 * suffix, and each middle chunk is best taken at its earliest occurrence.
 */
function compileSegment(segment: string): (value: string) => boolean {
  const chunks = segment.split('*');
  const head = chunks[0] ?? '';
  const tail = chunks[chunks.length - 1] ?? '';
  if (chunks.length === 1) return (value) => value === segment;
  const middle = chunks.slice(1, -1).filter((c) => c !== '');
  const fixed = head.length + tail.length;
  return (value) => {
    if (value.length < fixed || !value.startsWith(head) || !value.endsWith(tail)) return false;
    const end = value.length - tail.length;
    let at = head.length;
    for (const chunk of middle) {
      const found = value.indexOf(chunk, at);
      if (found === -1 || found + chunk.length > end) return false;
      at = found + chunk.length;
    }
    return true;
  };
}

type SegmentMatcher =
  | { readonly any: true }
  | { readonly any: false; readonly match: (v: string) => boolean };

/**
 * Segment-level matching with `**` as "zero or more segments": the classic
 * wildcard algorithm that remembers only the last `**` and retries from it, which
 * is exact here and needs at most O(pattern segments × value segments) steps.
 */
function matchSegments(pattern: readonly SegmentMatcher[], value: readonly string[]): boolean {
  let p = 0;
  let v = 0;
  let starP = -1;
  let starV = 0;
  while (v < value.length) {
    const current = pattern[p];
    const segment = value[v];
    if (current?.any) {
      starP = p;
      starV = v;
      p++;
    } else if (current !== undefined && segment !== undefined && current.match(segment)) {
      p++;
      v++;
    } else if (starP !== -1) {
      p = starP + 1;
      starV++;
      v = starV;
    } else {
      return false;
    }
  }
  while (pattern[p]?.any) p++;
  return p === pattern.length;
}

export function compileGlob(pattern: string): CompiledGlob {
  if (pattern === '') return { ok: false, reason: 'pattern is empty' };
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return { ok: false, reason: `pattern is longer than ${MAX_PATTERN_LENGTH} characters` };
  }
  if (hasControlCharacter(pattern)) {
    return { ok: false, reason: 'pattern contains a control character' };
  }
  if (!pattern.includes('*')) {
    return { ok: true, match: (s) => s === pattern };
  }
  const segments = pattern.split('/');
  if (segments.some((segment) => segment.includes('**') && segment !== '**')) {
    return { ok: false, reason: "'**' must be a whole path segment (use '*' within a segment)" };
  }
  if (hasBadSegment(pattern)) {
    return { ok: false, reason: "pattern with '*' has an empty, '.' or '..' segment" };
  }
  const matchers = segments.map(
    (segment): SegmentMatcher =>
      segment === '**' ? { any: true } : { any: false, match: compileSegment(segment) },
  );
  const [only] = matchers;
  if (matchers.length === 1 && only !== undefined && !only.any) {
    // One segment without '**' (e.g. `deploy-*`) matches one segment: no list to build.
    const matchOne = only.match;
    return { ok: true, match: (s) => !s.includes('/') && isWellFormedValue(s) && matchOne(s) };
  }
  return {
    ok: true,
    match: (s) => isWellFormedValue(s) && matchSegments(matchers, s.split('/')),
  };
}
