/**
 * The README's first command: `zsb dev` starts OpenBao, an issuer and the broker; the
 * printed example (mint a token with `zsb dev token`, POST /v1/fetch) returns a secret.
 */
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { exitOf, runZsb, spawnZsb, waitForOutput } from '../support/process.js';

let cwd = '';
afterAll(async () => {
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

it('zsb dev serves the example secrets and stops cleanly on SIGINT', async () => {
  cwd = await mkdtemp(path.join(tmpdir(), 'zsb-dev-'));
  const child = spawnZsb(['dev', '--port', '0'], { cwd });
  try {
    const out = await waitForOutput(child, /Press Ctrl-C to stop/, 60000);
    const url = /broker\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
    expect(url).toBeDefined();
    const minted = await runZsb(['dev', 'token'], { cwd });
    expect(minted.code).toBe(0);
    const token = minted.stdout.trim();
    expect(token.split('.')).toHaveLength(3);

    const res = await fetch(`${url}/v1/fetch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ secrets: ['compliance-clouds'] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      secrets: Record<string, { data: Record<string, string> }>;
    };
    expect(body.secrets['compliance-clouds']?.data.username).toBe('ci');
    expect(body.secrets['compliance-clouds']?.data.password).toMatch(/^[A-Za-z0-9_-]{16}$/);

    const denied = await runZsb(['dev', 'token', 'pipeline=check'], { cwd });
    const refused = await fetch(`${url}/v1/secrets/compliance-clouds`, {
      headers: { authorization: `Bearer ${denied.stdout.trim()}` },
    });
    expect(refused.status).toBe(403);

    const bad = await runZsb(['dev', 'token', 'nonsense'], { cwd });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('KEY=VALUE');
  } finally {
    child.kill('SIGINT');
  }
  expect(await exitOf(child)).toBe(0);
  await expect(access(path.join(cwd, '.zsb-dev'))).rejects.toThrow();
}, 90000);
