/** Character classes shared by the policy checks, kept in one place so they agree. */

/** C0, DEL, C1 and the Unicode line/paragraph separators: never meaningful in names or paths. */
export function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) return true;
  }
  return false;
}

/** A name from a file, fit for a one-line message: cut short, control characters escaped. */
export function showName(name: string): string {
  const cut = name.length > 80 ? `${name.slice(0, 80)}…` : name;
  return hasControlCharacter(cut) ? JSON.stringify(cut).slice(1, -1) : cut;
}
