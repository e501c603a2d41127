/**
 * Zuul's `sub` for a token secret: `secret:{tenant}/{canonical project}/{secret name}`.
 * The tenant never contains `/` and the secret name is the last segment, so everything in
 * between is the canonical project (`host/org/repo`, possibly deeper). These segments end
 * up in policy matching, OpenBao paths and log lines, hence the strict character rules.
 */

export interface ZuulSubject {
  readonly tenant: string;
  readonly project: string;
  readonly secret: string;
}

export type SubjectParseResult =
  | { readonly ok: true; readonly subject: ZuulSubject }
  | { readonly ok: false; readonly reason: string };

const SUBJECT_PREFIX = 'secret:';

/** Far above any real Zuul subject; keeps pathological input out of later string work. */
const MAX_SUBJECT_LENGTH = 2048;

/**
 * Control, format (zero-width, bidi overrides) and separator characters, plus any whitespace:
 * none occur in Zuul tenant, project or secret names, and all of them can disguise a name in
 * a log line or a policy review.
 */
const FORBIDDEN_CHARACTERS = /[\p{Cc}\p{Cf}\p{Z}\s]/u;

function segmentProblem(segment: string): string | undefined {
  if (segment === '') return 'empty segment';
  if (segment === '.' || segment === '..') return 'dot segment';
  if (FORBIDDEN_CHARACTERS.test(segment)) return 'forbidden character';
  return undefined;
}

export function parseSubject(sub: string): SubjectParseResult {
  if (sub.length > MAX_SUBJECT_LENGTH) return { ok: false, reason: 'subject too long' };
  if (!sub.startsWith(SUBJECT_PREFIX)) return { ok: false, reason: 'subject is not a secret' };
  const segments = sub.slice(SUBJECT_PREFIX.length).split('/');
  // tenant + at least one project segment + secret name
  if (segments.length < 3) return { ok: false, reason: 'subject has too few segments' };
  for (const segment of segments) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) return { ok: false, reason: `subject has ${problem}` };
  }
  const [tenant, ...rest] = segments;
  const secret = rest.pop();
  if (tenant === undefined || secret === undefined) {
    return { ok: false, reason: 'subject has too few segments' };
  }
  return { ok: true, subject: { tenant, project: rest.join('/'), secret } };
}
