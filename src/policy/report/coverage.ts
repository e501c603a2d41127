/**
 * Whether one set of match patterns admits every value another admits: the basis of the
 * reach matrix (a broader grant also reaches a narrower grant's identities) and of the
 * diff (a field widened or narrowed). Conservative: "covers" is answered only when it is
 * certain, so the report never claims a reach that the broker would not grant.
 */
import { compileGlob } from '../glob.js';

/** Patterns of one match field; undefined = the field is absent (any value). */
export type FieldPatterns = readonly string[] | undefined;

/** Whether pattern `outer` admits every value that pattern `inner` admits. */
function patternCovers(outer: string, inner: string): boolean {
  if (outer === inner || outer === '**') return true;
  if (!outer.includes('*')) return false; // a literal covers only itself
  if (inner.includes('*')) return false; // glob inside glob: not decided, so not claimed
  const glob = compileGlob(outer);
  return glob.ok && glob.match(inner);
}

/** Whether the field patterns `outer` admit every value `inner` admits. */
export function fieldCovers(outer: FieldPatterns, inner: FieldPatterns): boolean {
  if (outer === undefined) return true;
  // An absent field admits values (empty, odd segments) that even `**` refuses.
  if (inner === undefined) return false;
  return inner.every((i) => outer.some((o) => patternCovers(o, i)));
}

export type Change = 'same' | 'widened' | 'narrowed' | 'changed';

/** How `after` relates to `before`: admits more, fewer, the same, or some of each. */
export function fieldChange(before: FieldPatterns, after: FieldPatterns): Change {
  const wider = fieldCovers(after, before);
  const narrower = fieldCovers(before, after);
  if (wider && narrower) return 'same';
  if (wider) return 'widened';
  if (narrower) return 'narrowed';
  return 'changed';
}

/** Several changes of one grant or reach, as one: mixed directions are `changed`. */
export function combineChanges(changes: readonly Change[]): Change {
  const moved = new Set(changes.filter((c) => c !== 'same'));
  if (moved.size === 0) return 'same';
  if (moved.size === 1) return [...moved][0] ?? 'changed';
  return 'changed';
}
