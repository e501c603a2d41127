/**
 * The report page's only style sheet and script, inlined into the one HTML file (no fonts,
 * no external files, no network). The page's Content-Security-Policy allows exactly these
 * two by hash, so even a name that slipped past escaping could not run. The script only
 * shows and hides what the server side rendered: it never builds markup from data.
 */

export const PAGE_STYLE = `
:root { color-scheme: light; --ink: #1b1f24; --muted: #4a5560; --line: #c9d1d9; --bg: #ffffff;
  --soft: #f4f6f8; --ok-bg: #e3f2e7; --ok-ink: #0f4d23; --warn-bg: #fff1c2; --warn-ink: #5c4300;
  --bad-bg: #fde0dd; --bad-ink: #8a1c13; --info-bg: #e2ecfb; --info-ink: #123f80; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--bg); }
header { padding: 16px 24px 8px; border-bottom: 1px solid var(--line); background: var(--soft); }
h1 { margin: 0 0 4px; font-size: 22px; }
h2 { margin: 28px 0 8px; font-size: 18px; }
h3 { margin: 16px 0 6px; font-size: 15px; }
main { padding: 0 24px 32px; }
nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: 16px; padding: 0; margin: 8px 0 0; }
a { color: #0b4fa8; }
.meta { color: var(--muted); margin: 0; }
.summary { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0 4px; padding: 0; list-style: none; }
.summary li { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; }
.summary strong { font-size: 18px; margin-right: 4px; }
.summary .alert { border-color: var(--bad-ink); color: var(--bad-ink); }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 6px 8px; vertical-align: top; text-align: left; }
thead th { background: var(--soft); position: sticky; top: 0; }
caption { text-align: left; color: var(--muted); padding: 4px 0; caption-side: top; }
code { font: 12.5px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
dl.match { display: grid; grid-template-columns: max-content 1fr; gap: 0 8px; margin: 0; }
dl.match dt { color: var(--muted); }
dl.match dd { margin: 0; }
.matrix td.cell { min-width: 108px; text-align: center; }
.matrix td.none { color: var(--muted); background: var(--soft); text-align: center; }
.matrix td.none::after { content: "—"; }
.matrix td.reach { background: var(--ok-bg); color: var(--ok-ink); }
.matrix td.reach.premerge { background: var(--bad-bg); color: var(--bad-ink); outline: 2px solid var(--bad-ink); outline-offset: -2px; }
.matrix td.reach.inherited { border-style: dashed; }
.cell .ttl { font-weight: 600; display: block; }
.cell .via { display: block; font-size: 12px; }
.badge { display: inline-block; border-radius: 10px; padding: 1px 8px; margin: 2px 4px 2px 0;
  font-size: 12px; font-weight: 600; white-space: nowrap; }
.badge.pre-merge, .badge.cross-tenant, .badge.added, .badge.widened { background: var(--bad-bg); color: var(--bad-ink); }
.badge.weak-narrowing, .badge.config-project-identity, .badge.changed, .badge.broad-glob { background: var(--warn-bg); color: var(--warn-ink); }
.badge.shared-token-secret { background: var(--info-bg); color: var(--info-ink); }
.badge.removed, .badge.narrowed { background: var(--ok-bg); color: var(--ok-ink); }
.filters { display: flex; flex-wrap: wrap; gap: 12px 20px; align-items: center; padding: 10px 12px;
  border: 1px solid var(--line); border-radius: 6px; background: var(--soft); }
.filters input[type=search] { font: inherit; padding: 4px 8px; min-width: 240px; }
.filters select { font: inherit; padding: 3px 6px; }
.count { color: var(--muted); }
.flags { margin: 0; padding-left: 18px; }
.loc { color: var(--muted); font-size: 12px; }
.scroll { overflow-x: auto; }
[hidden] { display: none !important; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.empty { color: var(--muted); font-style: italic; }
`;

export const PAGE_SCRIPT = `
(function () {
  'use strict';
  var q = document.getElementById('q');
  var preMerge = document.getElementById('f-premerge');
  var flagged = document.getElementById('f-flagged');
  var secret = document.getElementById('f-secret');
  var flag = document.getElementById('f-flag');
  var count = document.getElementById('count');
  var rows = Array.prototype.slice.call(document.querySelectorAll('tr[data-row]'));
  var grantRows = Array.prototype.slice.call(document.querySelectorAll('tr[data-grant]'));
  function apply() {
    var text = q.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var ok = (!text || row.getAttribute('data-search').indexOf(text) >= 0) &&
        (!preMerge.checked || row.getAttribute('data-premerge') === '1') &&
        (!flagged.checked || row.getAttribute('data-flags') !== '') &&
        (!secret.value || row.getAttribute('data-secrets').split(' ').indexOf(secret.value) >= 0) &&
        (!flag.value || row.getAttribute('data-flags').split(' ').indexOf(flag.value) >= 0);
      row.hidden = !ok;
      if (ok) shown++;
    });
    grantRows.forEach(function (row) {
      row.hidden = !!text && row.getAttribute('data-search').indexOf(text) < 0;
    });
    count.textContent = shown + ' of ' + rows.length + ' identities shown';
  }
  [q, preMerge, flagged, secret, flag].forEach(function (el) {
    el.addEventListener('input', apply);
    el.addEventListener('change', apply);
  });
  apply();
})();
`;
