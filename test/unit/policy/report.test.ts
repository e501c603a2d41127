/**
 * The reach report's data model (src/policy/report/): rows and cells under the broker's
 * union rule, flags reused from the policy warnings, the diff of a policy change (added,
 * removed, widened, narrowed), and an HTML view that no name from a policy file can break.
 */
import { describe, expect, it } from 'vitest';
import { parsePolicyFiles } from '../../../src/policy/load.js';
import { fieldChange, fieldCovers } from '../../../src/policy/report/coverage.js';
import { diffReports } from '../../../src/policy/report/diff.js';
import { esc, renderReportHtml } from '../../../src/policy/report/html.js';
import { buildReport } from '../../../src/policy/report/model.js';
import type { PolicyReport } from '../../../src/policy/report/types.js';
import type { PolicySet } from '../../../src/policy/types.js';
import {
  changedPolicyFiles,
  HOSTILE_POLICY,
  shippedPolicyFiles,
} from '../../support/report-fixtures.js';

const NOW = new Date('2026-12-01T10:00:00Z');

function load(files: Record<string, string>): PolicySet {
  const result = parsePolicyFiles(
    Object.entries(files).map(([name, text]) => ({ name, text })),
    { maxTtlSeconds: 3600 },
  );
  if (!result.ok) throw new Error(result.problems.map((p) => p.message).join('; '));
  return result.set;
}

function report(files: Record<string, string>): PolicyReport {
  return buildReport(load(files), { dir: 'policies', now: NOW });
}

function rowOf(r: PolicyReport, grant: string) {
  const row = r.identities.find((i) => i.grants.includes(grant));
  if (row === undefined) throw new Error(`no row for ${grant}`);
  return row;
}

function reach(r: PolicyReport, grant: string, secret: string) {
  return r.reaches.find((x) => x.identity === rowOf(r, grant).id && x.secret === secret);
}

const kinds = (r: PolicyReport, grant: string) =>
  r.grants.find((g) => g.name === grant)?.flags.map((f) => f.kind) ?? [];

describe('coverage of match patterns', () => {
  it('answers covers only when certain', () => {
    expect(fieldCovers(undefined, ['a'])).toBe(true);
    expect(fieldCovers(['**'], undefined)).toBe(false);
    expect(fieldCovers(['*-deploy'], ['x-deploy', 'y-deploy'])).toBe(true);
    expect(fieldCovers(['*-deploy'], ['x-deploy', 'check'])).toBe(false);
    expect(fieldCovers(['a/**'], ['a/*'])).toBe(false); // glob in glob: not claimed
    expect(fieldCovers(['**'], ['a/*'])).toBe(true);
  });

  it('tells widened, narrowed and changed apart', () => {
    expect(fieldChange(['post'], ['post', 'check'])).toBe('widened');
    expect(fieldChange(['post', 'check'], ['post'])).toBe('narrowed');
    expect(fieldChange(['post'], ['gate'])).toBe('changed');
    expect(fieldChange(['post'], undefined)).toBe('widened');
    expect(fieldChange(['b', 'a'], ['a', 'b'])).toBe('same');
  });
});

describe('the reach matrix of the shipped policies', () => {
  const shipped = report(shippedPolicyFiles());

  it('has one row per grant match and a cell per allowed secret with ttl and wrap', () => {
    expect(shipped.identities).toHaveLength(3);
    expect(reach(shipped, 'compliance-checks', 'compliance-clouds')).toMatchObject({
      grant: 'compliance-checks',
      ttlSeconds: 900,
      wrap: 'optional',
      inherited: false,
      preMerge: false,
    });
    expect(reach(shipped, 'status-page-admin-deploy', 'status-page-admin')?.wrap).toBe('required');
    expect(reach(shipped, 'compliance-checks', 'status-page-admin')).toBeUndefined();
    expect(shipped.matchFields).toContain('playbook');
  });

  it('flags globs and the config project token secret, and reuses no pre-merge where pinned', () => {
    expect(kinds(shipped, 'compliance-checks')).toEqual(['broad-glob']);
    expect(kinds(shipped, 'project-deploy')).toEqual(['broad-glob']);
    expect(kinds(shipped, 'status-page-admin-deploy')).toEqual(['shared-token-secret']);
    expect(shipped.reaches.some((r) => r.preMerge)).toBe(false);
  });

  it('carries no value: only names, patterns and paths of the policy files', () => {
    expect(JSON.stringify(shipped)).not.toMatch(/password|private_key":/);
  });
});

describe('the reach matrix of a policy change', () => {
  const changed = report(changedPolicyFiles());

  it('marks reaches from pre-merge pipelines with the policy warning', () => {
    expect(reach(changed, 'project-deploy', 'project-deploy-key')?.preMerge).toBe(true);
    expect(kinds(changed, 'project-deploy')).toContain('pre-merge');
    expect(kinds(changed, 'registry-push-everywhere')).toEqual(
      expect.arrayContaining(['pre-merge', 'config-project-identity', 'shared-token-secret']),
    );
  });

  it('lets a broader grant reach the rows it covers, as the broker would', () => {
    // `match: { tenant: scs }` covers every scs row: each reaches registry-push too.
    for (const grant of ['compliance-checks', 'project-deploy', 'status-page-admin-deploy']) {
      expect(reach(changed, grant, 'registry-push')).toMatchObject({
        grant: 'registry-push-everywhere',
        ttlSeconds: 3600,
        inherited: true,
      });
    }
  });

  it('shows declared rotations with the next cron run', () => {
    const push = changed.rotations.find((r) => r.name === 'registry-push');
    expect(push).toMatchObject({
      schedule: 'cron 0 3 * * 1 (UTC)',
      nextDeclared: '2026-12-07T03:00:00.000Z',
    });
    expect(changed.rotations.find((r) => r.name === 'compliance-clouds')?.schedule).toBe(
      'every 30d',
    );
    expect(changed.secrets.find((s) => s.name === 'compliance-clouds')?.rotation).toBe(
      'compliance-clouds',
    );
    expect(changed.rotationSource).toBe('declared');
  });

  it('adds the recorded state with --status, without the error message', () => {
    const r = buildReport(load(changedPolicyFiles()), {
      dir: 'policies',
      now: NOW,
      recorded: [
        {
          name: 'registry-push',
          lastSuccess: '2026-11-30T03:00:00.000Z',
          nextRun: '2026-12-07T03:00:00.000Z',
          failures: 2,
          lastError: { at: '2026-12-01T03:00:00.000Z' },
        },
        {
          name: 'broker-secret-id',
          schedule: 'every 86400s',
          nextRun: NOW.toISOString(),
          failures: 0,
        },
      ],
    });
    expect(r.rotations.find((x) => x.name === 'broker-secret-id')).toMatchObject({
      schedule: 'every 86400s',
      location: '(recorded by the broker)',
      status: { nextRun: NOW.toISOString(), failures: 0 },
    });
    expect(r.rotationSource).toBe('openbao');
    expect(r.rotations.find((x) => x.name === 'registry-push')?.status).toEqual({
      lastSuccess: '2026-11-30T03:00:00.000Z',
      nextRun: '2026-12-07T03:00:00.000Z',
      failures: 2,
      lastErrorAt: '2026-12-01T03:00:00.000Z',
    });
  });
});

describe('the union rule in a cell', () => {
  it('takes the largest ttl and requires wrapping only when every grant does', () => {
    const set = load({
      'p.yaml': `secrets:
  s: { kv: { mount: secret, path: x } }
grants:
  - { name: narrow, match: { tenant: t, pipeline: post, job: j }, allow: [s], ttl: 5m, wrap: required }
  - { name: broad, match: { tenant: t, pipeline: post }, allow: [s], ttl: 20m, wrap: required }
  - { name: other, match: { tenant: t, pipeline: [post, promote], job: j }, allow: [s], ttl: 20m }
`,
    });
    const r = buildReport(set, { dir: 'p', now: NOW });
    expect(reach(r, 'narrow', 's')).toMatchObject({
      grant: 'broad', // first of the largest ttl in load order
      grants: ['narrow', 'broad', 'other'],
      ttlSeconds: 1200,
      wrap: 'optional', // `other` leaves the choice to the job
      inherited: false,
    });
    expect(reach(r, 'broad', 's')).toMatchObject({ grant: 'broad', wrap: 'required' });
  });

  it('finds covering grants of every tenant shape: listed, pattern, absent', () => {
    const r = report({
      'p.yaml': `secrets:
  a: { kv: { mount: secret, path: a } }
  b: { kv: { mount: secret, path: b } }
  c: { kv: { mount: secret, path: c } }
  d: { kv: { mount: secret, path: d } }
grants:
  - { name: row, match: { tenant: tb, pipeline: post }, allow: [a] }
  - { name: listed, match: { tenant: [ta, tb] }, allow: [b] }
  - { name: pattern, match: { tenant: "t*", pipeline: [post, promote] }, allow: [c] }
  - { name: anywhere, match: { pipeline: post }, allow: [d] }
  - { name: elsewhere, match: { tenant: tc }, allow: [a, b, c, d] }
`,
    });
    const cells = r.reaches.filter((x) => x.identity === rowOf(r, 'row').id);
    expect(cells.map((x) => [x.secret, x.grant])).toEqual([
      ['a', 'row'],
      ['b', 'listed'],
      ['c', 'pattern'],
      ['d', 'anywhere'],
    ]);
  });

  it('finds covering grants of every project shape, for literal, glob and absent rows', () => {
    const r = report({
      'p.yaml': `secrets:
  a: { kv: { mount: secret, path: a } }
  b: { kv: { mount: secret, path: b } }
  c: { kv: { mount: secret, path: c } }
  d: { kv: { mount: secret, path: d } }
grants:
  - { name: row, match: { tenant: t, project: [o/p2, o/p1], pipeline: post }, allow: [a] }
  - { name: listed, match: { tenant: t, project: [o/p1, o/p2, o/p3] }, allow: [b] }
  - { name: pattern, match: { tenant: t, project: "o/*", pipeline: post }, allow: [c] }
  - { name: anyproject, match: { tenant: t, pipeline: post }, allow: [d] }
  - { name: elsewhere, match: { tenant: t, project: o/p1 }, allow: [a, b, c, d] }
  - { name: globrow, match: { tenant: t, project: "o/*", pipeline: [post, promote] }, allow: [a] }
  - { name: everywhere, match: { tenant: t, project: "**" }, allow: [b] }
  - { name: bare, match: { tenant: t, pipeline: [post, promote] }, allow: [a] }
`,
    });
    const cells = (grant: string) =>
      r.reaches.filter((x) => x.identity === rowOf(r, grant).id).map((x) => [x.secret, x.grants]);
    expect(cells('row')).toEqual([
      ['a', ['row', 'globrow', 'bare']],
      ['b', ['listed', 'everywhere']],
      ['c', ['pattern']],
      ['d', ['anyproject']],
    ]);
    // A glob row: only the same glob and `**` cover it; a row without project only grants without.
    expect(cells('globrow')).toEqual([
      ['a', ['globrow', 'bare']],
      ['b', ['everywhere']],
    ]);
    expect(cells('bare')).toEqual([['a', ['bare']]]);
  });
});

describe('the diff of a policy change', () => {
  const before = report(shippedPolicyFiles());
  const after = report(changedPolicyFiles());
  const d = diffReports(before, after, 'HEAD~1');
  const find = (list: typeof d.grants, subject: string | RegExp) =>
    list.find((e) =>
      typeof subject === 'string' ? e.subject === subject : subject.test(e.subject),
    );

  it('classifies grants: added, widened, narrowed; unchanged ones are left out', () => {
    expect(find(d.grants, 'registry-push-everywhere')?.change).toBe('added');
    expect(find(d.grants, 'project-deploy')).toMatchObject({
      change: 'widened',
      details: ['pipeline: post, promote → post, promote, check (widened)'],
    });
    expect(find(d.grants, 'compliance-checks')).toMatchObject({
      change: 'narrowed',
      details: ['ttl: 15m → 10m (narrowed)'],
    });
    expect(find(d.grants, 'status-page-admin-deploy')).toBeUndefined();
  });

  it('follows a reach whose row moved, and lists new reaches and flags', () => {
    expect(find(d.reaches, /pipeline=post\|promote\|check .*→ project-deploy-key$/)?.change).toBe(
      'widened',
    );
    expect(find(d.reaches, /→ compliance-clouds$/)?.change).toBe('narrowed');
    expect(
      d.reaches.filter((e) => e.secret === 'registry-push' && e.change === 'added'),
    ).toHaveLength(4);
    expect(find(d.flags, 'project-deploy: pre-merge')?.change).toBe('added');
  });

  it('reports removals and the reverse direction', () => {
    const back = diffReports(after, before, 'change');
    expect(find(back.grants, 'registry-push-everywhere')?.change).toBe('removed');
    expect(find(back.grants, 'project-deploy')?.change).toBe('narrowed');
    expect(back.reaches.filter((e) => e.change === 'removed')).toHaveLength(4);
    expect(find(back.flags, 'project-deploy: pre-merge')?.change).toBe('removed');
  });

  it('treats wrap modes by how they may deliver', () => {
    const wrap = (from: string, to: string) => {
      const files = (w: string) => ({
        'p.yaml': `secrets:\n  s: { kv: { mount: secret, path: x } }\ngrants:\n  - { name: g, match: { tenant: t, pipeline: post }, allow: [s], wrap: ${w} }\n`,
      });
      return find(diffReports(report(files(from)), report(files(to)), 'x').grants, 'g')?.change;
    };
    expect(wrap('required', 'optional')).toBe('widened');
    expect(wrap('optional', 'never')).toBe('narrowed');
    expect(wrap('never', 'required')).toBe('changed');
  });
});

describe('the HTML view', () => {
  it('escapes every name, pattern and the embedded data', () => {
    const r = report({ 'p.yaml': HOSTILE_POLICY });
    const html = renderReportHtml(r);
    expect(html.match(/<script/g)).toHaveLength(2); // the data block and the page script
    expect(html).not.toContain('<img');
    expect(html).not.toContain('alert(1)</script>');
    expect(html).toContain(esc('<img src=x onerror=window.injected=2>'));
    const data = /<script type="application\/json" id="zsb-report">([^<]*)<\/script>/.exec(html);
    expect(JSON.parse(data?.[1] ?? 'null')).toEqual(JSON.parse(JSON.stringify(r)));
  });

  it('is self-contained: no external reference, CSP by hash', () => {
    const html = renderReportHtml(report(changedPolicyFiles()));
    expect(html).not.toMatch(/\b(src|href)="(https?:)?\/\//);
    const csp = /http-equiv="Content-Security-Policy" content="([^"]*)"/.exec(html)?.[1] ?? '';
    expect(csp.replaceAll('&#39;', "'")).toMatch(
      /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; script-src 'sha256-[A-Za-z0-9+/=]+';/,
    );
  });
});
