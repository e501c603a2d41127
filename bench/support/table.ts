/** Markdown tables for the benchmark report (printable as is and pasteable into BENCHMARKS.md). */

export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

export function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

export function megabytes(bytes: number): string {
  return bytes > 0 ? (bytes / 1e6).toFixed(0) : 'n/a';
}

export function percent(cores: number): string {
  return `${(cores * 100).toFixed(0)} %`;
}

export function thousands(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}
