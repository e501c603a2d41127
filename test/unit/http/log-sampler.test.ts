import { describe, expect, it } from 'vitest';
import { createLogSampler } from '../../../src/http/log-sampler.js';
import { buildTestApp } from '../../support/app.js';
import { TEST_POLICY } from '../../support/policies.js';

describe('log sampler for unauthenticated requests', () => {
  it('admits the budget per second, then counts by reason and summarises once', () => {
    let t = 1_000_000;
    const lines: Array<{ obj: Record<string, unknown>; msg: string }> = [];
    const sampler = createLogSampler(
      3,
      { warn: (obj, msg) => lines.push({ obj: obj as Record<string, unknown>, msg }) },
      () => t,
    );
    const admitted = Array.from({ length: 10 }, (_, i) =>
      sampler.admit(i % 2 ? 'bad signature' : 'malformed token'),
    );
    expect(admitted.filter(Boolean)).toHaveLength(3);
    expect(lines).toHaveLength(0);
    t += 1000; // the next window: the summary of the last one comes first
    expect(sampler.admit('token expired')).toBe(true);
    expect(lines).toEqual([
      {
        obj: {
          status: 401,
          suppressed: 7,
          reasons: { 'bad signature': 4, 'malformed token': 3 },
          perSecond: 3,
        },
        msg: 'unauthenticated requests over the log budget, counted instead of logged',
      },
    ]);
    sampler.flush();
    expect(lines).toHaveLength(1);
  });

  it('keeps a flood of junk tokens out of the request log, but not out of the metrics', async () => {
    const t = await buildTestApp(TEST_POLICY);
    try {
      for (let i = 0; i < 200; i++) {
        const res = await t.app.request('/v1/whoami', {
          headers: { authorization: `Bearer junk${i}` },
        });
        expect(res.status).toBe(401);
      }
      const requestLines = t.logs.entries().filter((e) => e.msg === 'request' && e.status === 401);
      expect(requestLines.length).toBeLessThanOrEqual(50);
      expect(requestLines.length).toBeGreaterThan(0);
      const metrics = await t.metrics.registry.metrics();
      expect(metrics).toMatch(
        /zsb_http_requests_total\{route="\/v1\/whoami",method="GET",status="401"\} 200/,
      );
      // A valid request is still logged.
      const ok = await t.app.request('/v1/whoami', {
        headers: { authorization: `Bearer ${t.issuer.mint()}` },
      });
      expect(ok.status).toBe(200);
      expect(t.logs.entries().some((e) => e.msg === 'request' && e.status === 200)).toBe(true);
    } finally {
      await t.close();
    }
  });
});
