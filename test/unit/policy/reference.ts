/**
 * A deliberately naive model of the policy semantics (policy.md "Matching"),
 * written from the documented rules and sharing no code with src/policy: the
 * property tests compare the real implementation against it.
 */
import type { Grant, PolicySet, PolicySubject, WrapMode } from '../../../src/policy/types.js';

/** `*` = any run of characters except `/`, by plain recursion. */
function segmentMatches(pattern: string, value: string): boolean {
  if (pattern === '') return value === '';
  if (pattern[0] === '*') {
    return (
      segmentMatches(pattern.slice(1), value) ||
      (value !== '' && !value.startsWith('/') && segmentMatches(pattern, value.slice(1)))
    );
  }
  return (
    value !== '' && value[0] === pattern[0] && segmentMatches(pattern.slice(1), value.slice(1))
  );
}

/** `**` = zero or more whole segments, by trying every split. */
function segmentsMatch(pattern: readonly string[], value: readonly string[]): boolean {
  const [head, ...rest] = pattern;
  if (head === undefined) return value.length === 0;
  if (head === '**') {
    for (let k = 0; k <= value.length; k++) if (segmentsMatch(rest, value.slice(k))) return true;
    return false;
  }
  const [first, ...others] = value;
  return first !== undefined && segmentMatches(head, first) && segmentsMatch(rest, others);
}

export function referenceGlob(pattern: string, value: string): boolean {
  if (!pattern.includes('*')) return pattern === value;
  const malformed =
    value === '' ||
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the model spells out the rule
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(value) ||
    value.split('/').some((s) => s === '' || s === '.' || s === '..');
  return !malformed && segmentsMatch(pattern.split('/'), value.split('/'));
}

export function referenceGrantMatches(grant: Grant, subject: PolicySubject): boolean {
  return Object.entries(grant.match).every(([field, patterns]) => {
    const value = subject[field as keyof PolicySubject];
    return value !== undefined && (patterns ?? []).some((p) => referenceGlob(p, value));
  });
}

export interface ReferenceDecision {
  readonly allowed: boolean;
  readonly denied: string[];
  readonly secrets: Record<string, { grant: string; ttlSeconds: number; wrap: WrapMode }>;
}

export function referenceDecide(
  set: PolicySet,
  subject: PolicySubject,
  names: readonly string[],
): ReferenceDecision {
  const denied: string[] = [];
  const secrets: ReferenceDecision['secrets'] = {};
  for (const name of names) {
    if (denied.includes(name) || name in secrets) continue;
    const allowing = set.secrets.has(name)
      ? set.grants.filter((g) => g.allow.includes(name) && referenceGrantMatches(g, subject))
      : [];
    const [first] = allowing;
    if (first === undefined) {
      denied.push(name);
      continue;
    }
    let best = first;
    for (const g of allowing) if (g.ttlSeconds > best.ttlSeconds) best = g;
    const wraps = allowing.map((g) => g.wrap);
    const wrap: WrapMode = wraps.every((w) => w === 'required')
      ? 'required'
      : wraps.every((w) => w === 'never')
        ? 'never'
        : 'optional';
    secrets[name] = { grant: best.name, ttlSeconds: best.ttlSeconds, wrap };
  }
  return denied.length > 0
    ? { allowed: false, denied, secrets: {} }
    : { allowed: true, denied, secrets };
}
