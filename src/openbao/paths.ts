/**
 * Builds OpenBao API paths from validated segments only. The client library does not
 * escape segments (`secret/data/../../sys/...` would reach `/v1/sys/...`), so every
 * segment is checked here and percent-encoded before it leaves the process.
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const FORBIDDEN = /[\u0000-\u001f\u007f%\\?#]/;

export class UnsafePathError extends Error {
  override readonly name = 'UnsafePathError';
}

/** Splits a slash-separated path and validates every segment. */
export function splitSegments(path: string): string[] {
  const segments = path.split('/');
  for (const segment of segments) {
    if (segment.length === 0) throw new UnsafePathError('path has an empty segment');
    if (segment === '.' || segment === '..') throw new UnsafePathError('path has a dot segment');
    if (FORBIDDEN.test(segment)) throw new UnsafePathError('path has a forbidden character');
    if (segment.trim().length === 0) throw new UnsafePathError('path has a blank segment');
  }
  return segments;
}

/** Joins validated parts into `/a/b/c`, encoding each segment. Parts may contain `/`. */
export function apiPath(...parts: string[]): string {
  return `/${parts.flatMap(splitSegments).map(encodeURIComponent).join('/')}`;
}
