import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPolicyStore, type ReloadResult } from '../../../src/broker/policy-store.js';
import { ConfigMapVolume } from '../../support/configmap-volume.js';

const GOOD = `
secrets:
  a: { kv: { mount: secret, path: zuul/a } }
grants:
  - name: g
    match: { tenant: scs }
    allow: [a]
`;
const GOOD_TWO = `${GOOD}
  - name: h
    match: { tenant: other }
    allow: [a]
`;
const BROKEN = `
secrets:
  a: { kv: { mount: secret, path: zuul/a } }
grants:
  - name: g
    allow: [missing-secret]
`;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-policies-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('policy store', () => {
  it('is failing until a set loads, then ok', async () => {
    const store = createPolicyStore(dir, { maxTtlSeconds: 3600 });
    expect(store.status().status).toBe('failing');
    await writeFile(path.join(dir, 'p.yaml'), GOOD);
    expect(await store.reload()).toEqual({ ok: true });
    expect(store.status()).toEqual({ status: 'ok', detail: '1 secrets, 1 grants from 1 files' });
  });

  it('keeps serving the last good set when a reload is rejected, and says why', async () => {
    await writeFile(path.join(dir, 'p.yaml'), GOOD);
    const store = createPolicyStore(dir, { maxTtlSeconds: 3600 });
    await store.reload();
    const before = store.current();
    await writeFile(path.join(dir, 'p.yaml'), BROKEN);
    const result = await store.reload();
    expect(result.ok).toBe(false);
    expect(store.current()).toBe(before);
    const status = store.status();
    expect(status.status).toBe('degraded');
    expect(status.detail).toMatch(/p\.yaml:\d+:\d+: /);
    await writeFile(path.join(dir, 'p.yaml'), GOOD_TWO);
    expect(await store.reload()).toEqual({ ok: true });
    expect(store.current()?.grants).toHaveLength(2);
    expect(store.status().status).toBe('ok');
  });

  it('reloads on file change', async () => {
    await writeFile(path.join(dir, 'p.yaml'), GOOD);
    const store = createPolicyStore(dir, { maxTtlSeconds: 3600 });
    await store.reload();
    const results: ReloadResult[] = [];
    const applied = new Promise<void>((resolve) => {
      const stop = store.watch((r) => {
        results.push(r);
        if (r.ok && store.current()?.grants.length === 2) {
          stop();
          resolve();
        }
      });
    });
    await writeFile(path.join(dir, 'p.yaml'), GOOD_TWO);
    await applied;
    expect(store.current()?.grants.map((g) => g.name)).toEqual(['g', 'h']);
  });

  it('reads a ConfigMap volume (..data symlinks) and reloads when the kubelet swaps it', async () => {
    const volume = new ConfigMapVolume(path.join(dir, 'configmap'));
    await volume.write({ 'p.yaml': GOOD });
    const store = createPolicyStore(volume.dir, { maxTtlSeconds: 3600 });
    expect(await store.reload()).toEqual({ ok: true });
    // The timestamped directory and ..data are not loaded a second time.
    expect(store.current()?.files).toHaveLength(1);
    const grants = (count: number) =>
      new Promise<void>((resolve) => {
        const stop = store.watch((r) => {
          if (r.ok && store.current()?.grants.length === count) {
            stop();
            resolve();
          }
        });
      });
    const two = grants(2);
    await volume.write({ 'p.yaml': GOOD_TWO });
    await two;
    // A renamed file: the old name's symlink goes, the new one appears.
    const one = grants(1);
    await volume.write({ 'q.yaml': GOOD });
    await one;
    expect(store.current()?.files).toHaveLength(1);
    expect(store.status().status).toBe('ok');
  });

  it('never lets an older load overwrite a newer one', async () => {
    await writeFile(path.join(dir, 'p.yaml'), GOOD);
    const store = createPolicyStore(dir, { maxTtlSeconds: 3600 });
    const first = store.reload();
    await writeFile(path.join(dir, 'p.yaml'), GOOD_TWO);
    const second = store.reload();
    await Promise.all([first, second]);
    expect(store.current()?.grants).toHaveLength(2);
  });
});
