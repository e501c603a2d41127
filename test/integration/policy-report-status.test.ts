/**
 * `zsb policy report --status` against the run's real OpenBao: after a real `zsb rotate`,
 * the report shows the recorded last success and next run of each rotation (and "never"
 * for one not yet run), read the way `zsb rotation status` reads them, and never the
 * rotated value (a registered canary, so the whole-run scan also checks the CLI's output).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyReport } from '../../src/policy/report/types.js';
import { registerCanary } from '../support/canary.js';
import { runZsb } from '../support/process.js';
import { uniquePrefix } from '../support/real-openbao.js';
import { type RotationFixture, setUpRotation } from '../support/rotation-setup.js';

const ROTATIONS = [
  '  - secret: api-key',
  '    every: 1d',
  '    generate: { key: apiKey, kind: token, length: 32, format: hex }',
  '  - secret: app-db',
  '    schedule: "0 3 * * *"',
  '    target: { postgres: { admin: pg-admin } }',
].join('\n');

describe('zsb policy report --status', () => {
  let fx: RotationFixture;

  beforeAll(async () => {
    fx = await setUpRotation(uniquePrefix('report'), { rotations: ROTATIONS });
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it("shows the rotation state the broker's OpenBao records, without values", async () => {
    const rotated = await runZsb(['rotate', 'api-key', '--config', fx.configFile], {
      cwd: fx.dir,
    });
    expect(rotated.code).toBe(0);
    const value = String((await fx.kv('generated')).data.apiKey);
    registerCanary(value);

    const run = await runZsb(
      ['policy', 'report', '--status', '--json', '--config', fx.configFile],
      {
        cwd: fx.dir,
      },
    );
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as PolicyReport;
    expect(report.rotationSource).toBe('openbao');
    const apiKey = report.rotations.find((r) => r.name === 'api-key')?.status;
    const lastSuccess = Date.parse(apiKey?.lastSuccess ?? '');
    expect(Date.now() - lastSuccess).toBeLessThan(60_000);
    expect(Date.parse(apiKey?.nextRun ?? '') - lastSuccess).toBe(86_400_000);
    expect(apiKey).toMatchObject({ lastOutcome: 'rotated', failures: 0 });
    const appDb = report.rotations.find((r) => r.name === 'app-db');
    expect(appDb?.schedule).toBe('cron 0 3 * * * (UTC)');
    expect(appDb?.status?.lastSuccess).toBeUndefined();
    expect(Date.parse(appDb?.status?.nextRun ?? '')).toBeLessThanOrEqual(Date.now()); // due at once

    const out = path.join(fx.dir, 'report.html');
    const html = await runZsb(
      ['policy', 'report', '--status', '--out', out, '--config', fx.configFile],
      {
        cwd: fx.dir,
      },
    );
    expect(html.code).toBe(0);
    const page = await readFile(out, 'utf8');
    expect(page).toContain('Next and last runs as the broker&#39;s OpenBao records them.');
    expect(page).toContain(apiKey?.lastSuccess ?? 'missing');
    expect(page).not.toContain(value);
    expect(run.stdout).not.toContain(value);
  });

  it('needs the broker configuration', async () => {
    const run = await runZsb(['policy', 'report', path.join(fx.dir, 'policies'), '--status'], {
      cwd: fx.dir,
      env: { ZSB_CONFIG: '' },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('no configuration: pass --config FILE or set ZSB_CONFIG');
  });
});
