/**
 * The reach report as one self-contained HTML file: rendered here from the data model
 * (types.ts), which is also embedded as JSON for machines. Every text from policy files
 * goes through `esc` (elements and attributes alike) and the embedded JSON through `json`,
 * so a name cannot open markup or a script; the CSP allows only the page's own style and
 * script (by hash) and nothing from the network.
 */
import { createHash } from 'node:crypto';
import { formatDuration } from '../duration.js';
import { PAGE_SCRIPT, PAGE_STYLE } from './page-assets.js';
import type {
  DiffEntry,
  FlagKind,
  MatchPatterns,
  PolicyReport,
  ReportFlag,
  ReportIdentity,
  ReportReach,
  ReportRotation,
} from './types.js';

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text for an element or a quoted attribute. */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** JSON safe inside <script type="application/json">: no `<`, `>`, `&` or line separators. */
export function json(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
}

export const FLAG_TITLES: Readonly<Record<FlagKind, string>> = {
  'pre-merge': 'pre-merge reach',
  'weak-narrowing': 'weak narrowing',
  'cross-tenant': 'cross-tenant',
  'config-project-identity': 'config project identity',
  'broad-glob': 'broad glob',
  'shared-token-secret': 'shared token secret',
};

const FLAG_MEANINGS: Readonly<Record<FlagKind, string>> = {
  'pre-merge':
    'jobs in check/gate, whose definition may come from an unreviewed change, can hold this identity',
  'weak-narrowing':
    'only job/playbook (or nothing) narrow the grant; a change author chooses both in a pre-merge job',
  'cross-tenant': 'no tenant, or a tenant pattern: projects of several tenants can match',
  'config-project-identity':
    "matches a config project's token secret without pinning job, playbook and pipeline",
  'broad-glob': 'a match field uses * or **: every matching name counts, including future ones',
  'shared-token-secret':
    "a config project's token secret: every job that uses it, for every project, has this identity",
};

function badge(kind: string, text: string): string {
  return `<span class="badge ${esc(kind)}">${esc(text)}</span>`;
}

function ttl(seconds: number): string {
  return formatDuration(seconds);
}

function matchList(match: MatchPatterns, fields: readonly string[]): string {
  const items = fields
    .filter((f) => match[f] !== undefined)
    .map((f) => `<dt>${esc(f)}</dt><dd><code>${esc((match[f] ?? []).join(', '))}</code></dd>`);
  return `<dl class="match">${items.join('')}</dl>`;
}

function flagBadges(flags: readonly ReportFlag[]): string {
  const kinds = [...new Set(flags.map((f) => f.kind))];
  return kinds.map((k) => badge(k, FLAG_TITLES[k])).join('');
}

function flagList(flags: readonly ReportFlag[]): string {
  if (flags.length === 0) return '<span class="empty">none</span>';
  const items = flags.map(
    (f) =>
      `<li>${badge(f.kind, FLAG_TITLES[f.kind])} ${esc(f.message)} <span class="loc">${esc(f.location)}</span></li>`,
  );
  return `<ul class="flags">${items.join('')}</ul>`;
}

function cell(reach: ReportReach | undefined, secret: string): string {
  // Most cells of a large set are empty: kept short (the dash comes from the style sheet).
  if (reach === undefined) return '<td class="none"></td>';
  const classes = [
    'cell',
    'reach',
    reach.preMerge ? 'premerge' : '',
    reach.inherited ? 'inherited' : '',
  ]
    .filter(Boolean)
    .join(' ');
  const notes = [
    reach.preMerge ? badge('pre-merge', 'pre-merge') : '',
    `<span class="via">${reach.inherited ? 'via broader ' : ''}grant ${esc(reach.grant)}</span>`,
  ].join('');
  return `<td class="${classes}" data-secret="${esc(secret)}"><span class="ttl">${esc(ttl(reach.ttlSeconds))} · ${esc(reach.wrap)}</span>${notes}</td>`;
}

function matrixRow(
  report: PolicyReport,
  row: ReportIdentity,
  reaches: readonly ReportReach[],
): string {
  const byName = new Map(reaches.map((r) => [r.secret, r]));
  const search = [
    ...Object.entries(row.match).flatMap(([f, ps]) => ps.map((p) => `${f}=${p}`)),
    ...row.grants,
    ...reaches.map((r) => r.secret),
  ]
    .join(' ')
    .toLowerCase();
  const attrs = [
    'data-row',
    `id="row-${esc(row.id)}"`,
    `data-premerge="${row.preMerge ? '1' : '0'}"`,
    `data-flags="${esc([...new Set(row.flags.map((f) => f.kind))].join(' '))}"`,
    `data-secrets="${esc(reaches.map((r) => r.secret).join(' '))}"`,
    `data-search="${esc(search)}"`,
  ].join(' ');
  const cells = report.secrets.map((s) => cell(byName.get(s.name), s.name)).join('');
  return (
    `<tr ${attrs}><th scope="row">${matchList(row.match, report.matchFields)}${flagBadges(row.flags)}</th>` +
    `<td>${row.grants.map((g) => `<a href="#grant-${esc(g)}">${esc(g)}</a>`).join('<br>')}</td>${cells}</tr>`
  );
}

function options(values: readonly string[], labels?: Readonly<Record<string, string>>): string {
  return values.map((v) => `<option value="${esc(v)}">${esc(labels?.[v] ?? v)}</option>`).join('');
}

function matrix(report: PolicyReport): string {
  const kinds = Object.keys(FLAG_TITLES).filter((k) =>
    report.identities.some((i) => i.flags.some((f) => f.kind === k)),
  );
  const byRow = new Map<string, ReportReach[]>();
  for (const r of report.reaches) {
    const list = byRow.get(r.identity);
    if (list === undefined) byRow.set(r.identity, [r]);
    else list.push(r);
  }
  const head = report.secrets
    .map((s) => `<th scope="col"><code>${esc(s.name)}</code></th>`)
    .join('');
  return `<section id="matrix" aria-labelledby="matrix-title">
<h2 id="matrix-title">Who can reach what</h2>
<p class="meta">One row per distinct grant match (an identity class: every Zuul token whose claims fit it), one column per secret. A cell gives the ttl and wrap mode the row gets at least; a dashed cell is reached through a broader grant; a red cell is reachable from pre-merge pipelines.</p>
<form class="filters" role="search" aria-label="Filter the matrix">
<label for="q">Search</label><input id="q" type="search" placeholder="tenant, project, job, grant, secret">
<label><input id="f-premerge" type="checkbox"> pre-merge reach only</label>
<label><input id="f-flagged" type="checkbox"> flagged only</label>
<label for="f-secret">Secret</label><select id="f-secret"><option value="">any</option>${options(report.secrets.map((s) => s.name))}</select>
<label for="f-flag">Flag</label><select id="f-flag"><option value="">any</option>${options(kinds, FLAG_TITLES)}</select>
<output id="count" class="count" aria-live="polite"></output>
</form>
<div class="scroll"><table class="matrix">
<caption>${report.identities.length} identities × ${report.secrets.length} secrets, ${report.reaches.length} reaches</caption>
<thead><tr><th scope="col">Identity (match)</th><th scope="col">Grants</th>${head}</tr></thead>
<tbody>${report.identities.map((row) => matrixRow(report, row, byRow.get(row.id) ?? [])).join('\n')}</tbody>
</table></div></section>`;
}

function diffTable(title: string, entries: readonly DiffEntry[]): string {
  if (entries.length === 0) return `<h3>${esc(title)}</h3><p class="empty">no change</p>`;
  const rows = entries.map(
    (e) =>
      `<tr data-change="${esc(e.change)}"><td>${badge(e.change, e.change)}</td><td><code>${esc(e.subject)}</code></td>` +
      `<td><ul class="flags">${e.details.map((d) => `<li>${esc(d)}</li>`).join('')}</ul></td></tr>`,
  );
  return `<h3>${esc(title)}</h3><table class="diff"><thead><tr><th scope="col">Change</th><th scope="col">What</th><th scope="col">Details</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function diff(report: PolicyReport): string {
  const d = report.diff;
  if (d === undefined) return '';
  return `<section id="diff" aria-labelledby="diff-title">
<h2 id="diff-title">Changes against <code>${esc(d.against)}</code></h2>
<p class="meta">Widened: admits more identities or secrets, a longer ttl, or plain delivery. Narrowed: the reverse. Changed: some of each.</p>
${diffTable('Grants', d.grants)}${diffTable('Reaches', d.reaches)}${diffTable('Flags', d.flags)}
</section>`;
}

function grants(report: PolicyReport): string {
  const rows = report.grants.map((g) => {
    const search = [g.name, ...g.allow, ...Object.values(g.match).flat()].join(' ').toLowerCase();
    return (
      `<tr data-grant id="grant-${esc(g.name)}" data-search="${esc(search)}"><th scope="row"><code>${esc(g.name)}</code><br><span class="loc">${esc(g.location)}</span></th>` +
      `<td>${matchList(g.match, report.matchFields)}</td><td>${g.allow.map((a) => `<code>${esc(a)}</code>`).join('<br>')}</td>` +
      `<td>${esc(ttl(g.ttlSeconds))}</td><td>${esc(g.wrap)}</td><td>${flagList(g.flags)}</td></tr>`
    );
  });
  return `<section id="grants" aria-labelledby="grants-title"><h2 id="grants-title">Grants and their flags</h2>
<div class="scroll"><table><thead><tr><th scope="col">Grant</th><th scope="col">Match</th><th scope="col">Allows</th><th scope="col">TTL</th><th scope="col">Wrap</th><th scope="col">Flags</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table></div></section>`;
}

function secrets(report: PolicyReport): string {
  const rows = report.secrets.map(
    (s) =>
      `<tr><th scope="row"><code>${esc(s.name)}</code></th><td>${esc(s.kind)}</td><td><code>${esc(s.source)}</code></td>` +
      `<td>${s.rotation ? `<a href="#rotation-${esc(s.rotation)}">${esc(s.rotation)}</a>` : '<span class="empty">none</span>'}</td><td class="loc">${esc(s.location)}</td></tr>`,
  );
  return `<section id="secrets" aria-labelledby="secrets-title"><h2 id="secrets-title">Secrets</h2>
<table><thead><tr><th scope="col">Secret</th><th scope="col">Kind</th><th scope="col">Source (names only)</th><th scope="col">Rotation</th><th scope="col">Defined at</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table></section>`;
}

function rotationRow(r: ReportRotation): string {
  const s = r.status;
  const next = s
    ? s.nextRun
    : (r.nextDeclared ?? 'at once when first enabled, then after each success');
  const last = s ? (s.lastSuccess ?? 'never') : 'unknown (run with --status)';
  const state = s
    ? [
        s.lastOutcome ? `last run ${s.lastOutcome}` : '',
        s.step ? `in progress (step ${s.step} done)` : '',
        s.failures > 0 ? `${s.failures} failed in a row, last at ${s.lastErrorAt ?? '?'}` : '',
      ]
        .filter(Boolean)
        .join('; ') || 'ok'
    : 'declared only';
  return (
    `<tr id="rotation-${esc(r.name)}"><th scope="row"><code>${esc(r.name)}</code><br><span class="loc">${esc(r.location)}</span></th>` +
    `<td>${esc(r.schedule)}</td><td>${esc(r.target)}</td><td>${esc(next)}</td><td>${esc(last)}</td><td>${esc(state)}</td></tr>`
  );
}

function rotations(report: PolicyReport): string {
  const source =
    report.rotationSource === 'openbao'
      ? "Next and last runs as the broker's OpenBao records them."
      : 'The declared schedule; run with --status and the broker configuration for the recorded last and next runs.';
  const body =
    report.rotations.length === 0
      ? '<p class="empty">No rotations are declared.</p>'
      : `<table><thead><tr><th scope="col">Rotation</th><th scope="col">Schedule</th><th scope="col">Target</th><th scope="col">Next run</th><th scope="col">Last success</th><th scope="col">State</th></tr></thead><tbody>${report.rotations.map(rotationRow).join('\n')}</tbody></table>`;
  return `<section id="rotations" aria-labelledby="rotations-title"><h2 id="rotations-title">Rotation schedule</h2><p class="meta">${esc(source)}</p>${body}</section>`;
}

function legend(): string {
  const items = (Object.keys(FLAG_TITLES) as FlagKind[]).map(
    (k) => `<dt>${badge(k, FLAG_TITLES[k])}</dt><dd>${esc(FLAG_MEANINGS[k])}</dd>`,
  );
  return `<section id="legend" aria-labelledby="legend-title"><h2 id="legend-title">What the flags mean</h2><dl class="match">${items.join('')}</dl></section>`;
}

function summary(report: PolicyReport): string {
  const preMerge = report.reaches.filter((r) => r.preMerge).length;
  const flagged = report.grants.filter((g) => g.flags.length > 0).length;
  const d = report.diff;
  const changes = d ? d.grants.length + d.reaches.length + d.flags.length : undefined;
  const item = (n: number, text: string, alert = false) =>
    `<li${alert ? ' class="alert"' : ''}><strong>${n}</strong>${esc(text)}</li>`;
  return `<ul class="summary">${[
    item(report.identities.length, 'identities'),
    item(report.secrets.length, 'secrets'),
    item(report.reaches.length, 'reaches'),
    item(preMerge, 'pre-merge reaches', preMerge > 0),
    item(flagged, 'flagged grants', flagged > 0),
    item(report.rotations.length, 'rotations'),
    ...(changes === undefined ? [] : [item(changes, 'changes', changes > 0)]),
  ].join('')}</ul>`;
}

export function renderReportHtml(report: PolicyReport): string {
  const csp = [
    "default-src 'none'",
    `style-src ${sha256(PAGE_STYLE)}`,
    `script-src ${sha256(PAGE_SCRIPT)}`,
    "img-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
  ].join('; ');
  const nav = [
    ...(report.diff ? [['diff', 'Changes']] : []),
    ['matrix', 'Matrix'],
    ['grants', 'Grants'],
    ['secrets', 'Secrets'],
    ['rotations', 'Rotations'],
    ['legend', 'Flags'],
  ]
    .map(([id, text]) => `<li><a href="#${id}">${text}</a></li>`)
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Policy reach report: ${esc(report.policies.dir)}</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<header>
<h1>Policy reach report</h1>
<p class="meta"><code>${esc(report.policies.dir)}</code> (${report.policies.files.map(esc).join(', ')}), generated ${esc(report.generatedAt)} by <code>zsb policy report</code>. Names only: no secret values.</p>
${summary(report)}
<nav aria-label="Sections"><ul>${nav}</ul></nav>
</header>
<main>
${diff(report)}
${matrix(report)}
${grants(report)}
${secrets(report)}
${rotations(report)}
${legend()}
</main>
<script type="application/json" id="zsb-report">${json(report)}</script>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
