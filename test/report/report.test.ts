/**
 * The reach report in a real browser (headless Debian Chromium through playwright-core):
 * the report of the shipped policies and of a policy change (a git repository whose last
 * commit is the change of test/support/report-fixtures.ts, reported `--against HEAD~1`),
 * checked the way a reviewer looks at them. Screenshots and the generated pages are kept in
 * .artifacts/report/ (gitignored; CI leaves them on disk).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runZsb } from '../support/process.js';
import {
  HOSTILE_POLICY,
  type PolicyChangeRepo,
  policyChangeRepo,
  SHIPPED_POLICIES,
  writePolicies,
} from '../support/report-fixtures.js';
import { launchBrowser } from './browser.js';

const ARTIFACTS = path.join(ROOT, '.artifacts', 'report');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

let browser: Browser;
let repo: PolicyChangeRepo;
const pages: Record<'shipped' | 'change' | 'hostile', string> = {
  shipped: path.join(ARTIFACTS, 'shipped.html'),
  change: path.join(ARTIFACTS, 'change.html'),
  hostile: path.join(ARTIFACTS, 'hostile.html'),
};

async function report(args: string[], cwd: string): Promise<void> {
  const run = await runZsb(['policy', 'report', ...args], { cwd, env: { ZSB_CONFIG: '' } });
  if (run.code !== 0) throw new Error(`zsb policy report ${args.join(' ')}: ${run.stderr}`);
}

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  repo = await policyChangeRepo('zsb-report-browser-');
  const hostile = path.join(repo.dir, 'hostile');
  await writePolicies(hostile, { 'p.yaml': HOSTILE_POLICY });
  await Promise.all([
    report([SHIPPED_POLICIES, '--out', pages.shipped], ROOT),
    report(['policies', '--against', 'HEAD~1', '--out', pages.change], repo.dir),
    report([hostile, '--out', pages.hostile], repo.dir),
  ]);
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await repo?.remove();
});

interface Opened {
  readonly page: Page;
  readonly context: BrowserContext;
  /** Every URL the page asked for. */
  readonly requests: string[];
  readonly dialogs: string[];
  readonly errors: string[];
}

/** Opens a report under its own CSP, as a reviewer's browser would (`bypassCSP` for axe). */
async function open(file: string, options: { bypassCSP?: boolean } = {}): Promise<Opened> {
  const context = await browser.newContext({
    viewport: { width: 1440, height: 900 },
    bypassCSP: options.bypassCSP ?? false,
  });
  const page = await context.newPage();
  const opened: Opened = { page, context, requests: [], dialogs: [], errors: [] };
  page.on('request', (r) => opened.requests.push(r.url()));
  page.on('dialog', (d) => {
    opened.dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (e) => opened.errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') opened.errors.push(m.text());
  });
  await page.goto(pathToFileURL(file).href);
  return opened;
}

async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage });
}

const rows = (page: Page) => page.locator('tr[data-row]:visible');
/** Runs in the page (the test's tsconfig has no DOM types): an element's background colour. */
function backgroundOf(el: unknown): string {
  const page = globalThis as unknown as {
    getComputedStyle(e: unknown): { backgroundColor: string };
  };
  return page.getComputedStyle(el).backgroundColor;
}
/** The matrix row that a grant defines. */
const rowOf = (page: Page, grant: string) =>
  page.locator(`tr[data-row]:has(a[href="#grant-${grant}"])`);

/** axe-core in the page: the violations of impact serious or critical. */
async function axeViolations(file: string, name: string): Promise<string[]> {
  const { page, context } = await open(file, { bypassCSP: true });
  await page.addScriptTag({ path: AXE });
  const result = (await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (o: unknown) => Promise<unknown> } }).axe;
    return axe.run({ resultTypes: ['violations'] });
  })) as {
    violations: { id: string; impact: string; help: string; nodes: unknown[] }[];
    passes: unknown[];
  };
  // axe ran its rules on this page (a page it could not read would pass none).
  expect(result.passes.length).toBeGreaterThan(10);
  await writeFile(
    path.join(ARTIFACTS, `${name}-axe.json`),
    `${JSON.stringify(result.violations, null, 2)}\n`,
  );
  await context.close();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help}, ${v.nodes.length} nodes`);
}

describe('the report of the shipped policies', () => {
  it('shows every grant match against every secret, flags, and loads nothing else', async () => {
    const { page, context, requests, errors } = await open(pages.shipped);
    await expect.poll(() => rows(page).count()).toBe(3);
    await expect.poll(() => page.locator('#count').textContent()).toBe('3 of 3 identities shown');
    const admin = rowOf(page, 'status-page-admin-deploy');
    await expect.poll(() => admin.locator('.badge.shared-token-secret').isVisible()).toBe(true);
    await expect
      .poll(() => admin.locator('td.reach[data-secret="status-page-admin"] .ttl').textContent())
      .toBe('15m · required');
    expect(await page.locator('td.reach.premerge').count()).toBe(0);
    expect(await page.locator('#diff').count()).toBe(0);
    await shot(page, 'shipped');
    expect(requests).toEqual([pathToFileURL(pages.shipped).href]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('passes axe-core without serious or critical violations', async () => {
    expect(await axeViolations(pages.shipped, 'shipped')).toEqual([]);
  });
});

describe('the report of a policy change', () => {
  it('flags the pre-merge reach visibly', async () => {
    const { page, context, errors } = await open(pages.change);
    const deploy = rowOf(page, 'project-deploy');
    const cell = deploy.locator('td.reach[data-secret="project-deploy-key"]');
    await expect.poll(() => cell.locator('.badge.pre-merge').isVisible()).toBe(true);
    // Red, not the green of a reach from post-merge pipelines only.
    expect(await cell.evaluate(backgroundOf)).toBe('rgb(253, 224, 221)');
    const safe = rowOf(page, 'compliance-checks');
    expect(
      await safe.locator('td.reach[data-secret="compliance-clouds"]').evaluate(backgroundOf),
    ).toBe('rgb(227, 242, 231)');
    expect(
      await page.locator('.summary li.alert', { hasText: 'pre-merge reaches' }).textContent(),
    ).toMatch(/^3\s*pre-merge reaches$/);
    await shot(page, 'change');
    await page.locator('#matrix').screenshot({ path: path.join(ARTIFACTS, 'change-matrix.png') });
    expect(errors).toEqual([]);
    await context.close();
  });

  it('narrows the matrix with the filters and the search', async () => {
    const { page, context } = await open(pages.change);
    await expect.poll(() => rows(page).count()).toBe(4);
    await page.getByLabel('pre-merge reach only').check();
    await expect.poll(() => page.locator('#count').textContent()).toBe('2 of 4 identities shown');
    const shown = await rows(page).locator('th').allTextContents();
    expect(shown.join('\n')).toContain('*-deploy');
    expect(shown.join('\n')).not.toContain('scs-compliance-*');
    await shot(page, 'change-filter-pre-merge', false);
    await page.getByLabel('pre-merge reach only').uncheck();
    await page.getByLabel('Search').fill('status-page-admin');
    await expect.poll(() => rows(page).count()).toBe(1);
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Secret', { exact: true }).selectOption('compliance-clouds');
    await expect.poll(() => rows(page).count()).toBe(1);
    await page.getByLabel('Flag', { exact: true }).selectOption('shared-token-secret');
    await expect.poll(() => page.locator('#count').textContent()).toBe('0 of 4 identities shown');
    await context.close();
  });

  it('shows the widened grant, the added grant and the narrowed ttl in the diff', async () => {
    const { page, context } = await open(pages.change);
    const diff = page.locator('#diff');
    await expect.poll(() => diff.locator('h2').textContent()).toBe('Changes against HEAD~1');
    const widened = diff.locator('table.diff tr', { hasText: 'project-deploy' }).first();
    expect(await widened.locator('.badge').textContent()).toBe('widened');
    expect(await widened.textContent()).toContain(
      'pipeline: post, promote → post, promote, check (widened)',
    );
    const added = diff.locator('table.diff tr', { hasText: 'registry-push-everywhere' }).first();
    expect(await added.locator('.badge').textContent()).toBe('added');
    const narrowed = diff.locator('table.diff tr', { hasText: 'compliance-checks' }).first();
    expect(await narrowed.textContent()).toContain('ttl: 15m → 10m (narrowed)');
    await diff.screenshot({ path: path.join(ARTIFACTS, 'change-diff.png') });
    await context.close();
  });

  it('shows the declared rotation schedule', async () => {
    const { page, context } = await open(pages.change);
    const rotation = page.locator('#rotation-registry-push');
    expect(await rotation.textContent()).toMatch(
      /cron 0 3 \* \* 1 \(UTC\).*\d{4}-\d\d-\d\dT03:00:00/s,
    );
    expect(await page.locator('#rotation-compliance-clouds').textContent()).toContain('every 30d');
    await context.close();
  });

  it('passes axe-core without serious or critical violations', async () => {
    expect(await axeViolations(pages.change, 'change')).toEqual([]);
  });
});

describe('names from policy files', () => {
  it('are shown as text and never run or add markup', async () => {
    const { page, context, dialogs, errors } = await open(pages.hostile);
    await expect.poll(() => rows(page).count()).toBe(1);
    expect(dialogs).toEqual([]);
    expect(
      await page.evaluate(() => (globalThis as unknown as { injected?: number }).injected),
    ).toBe(undefined);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(2);
    expect(await rows(page).first().textContent()).toContain(
      '<img src=x onerror=window.injected=2>',
    );
    expect(errors).toEqual([]);
    await context.close();
  });
});
