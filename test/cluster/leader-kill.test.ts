/**
 * SIGKILL of the active OpenBao node while jobs fetch KV and database secrets at a steady
 * rate through two broker instances given all three addresses (in different orders):
 * failures only inside the election window, each a 503 with Retry-After, none 5 s after
 * the new leader is active; every lease delivered is in its build's ledger and dies at a
 * revoke sent to the other instance (an undelivered one created by the dying leader is the
 * known limit of docs/high-availability.md). Figures are printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBroker } from '../../src/main.js';
import { canLogin } from '../support/dynamic-setup.js';
import {
  type Answer,
  baoCall,
  type ClusterFixture,
  call,
  ledgerOf,
  liveLeases,
  newBuild,
  sleep,
  startClusterFixture,
} from '../support/raft-cluster.js';

let fixture: ClusterFixture;
/** Two instances, as behind a load balancer: jobs fetch from one and revoke at the other. */
let brokers: RunningBroker[];

beforeAll(async () => {
  fixture = await startClusterFixture('kill');
  const reversed = [...fixture.addresses].reverse();
  brokers = [await fixture.startBroker(), await fixture.startBroker({ addresses: reversed })];
});

afterAll(async () => {
  await fixture?.close();
});

interface Sample extends Answer {
  readonly kind: 'kv' | 'db';
  readonly build: string;
}

function summary(samples: readonly Sample[], kind: string): string {
  const of = samples.filter((s) => s.kind === kind);
  const byStatus = new Map<number, number>();
  for (const s of of) byStatus.set(s.status, (byStatus.get(s.status) ?? 0) + 1);
  return `${kind}: ${of.length} fetches, ${[...byStatus].map(([k, v]) => `${k}×${v}`).join(' ')}`;
}

describe('leader SIGKILL under steady load', () => {
  it('fails only inside the election window, with 503 and Retry-After, and loses no lease', async () => {
    const builds = Array.from({ length: 4 }, newBuild);
    const samples: Sample[] = [];
    let running = true;
    const loop = async (kind: 'kv' | 'db', periodMs: number, offset: number) => {
      for (let i = offset; running && i < 100000; i++) {
        const build = builds[i % builds.length] ?? '';
        const token = fixture.issuer.mint({ 'build-uuid': build });
        const answer = await call(brokers[i % 2]?.url ?? '', 'POST', '/v1/fetch', token, {
          secrets: [kind === 'kv' ? 'clouds' : 'status-page-db'],
        });
        samples.push({ ...answer, kind, build });
        await sleep(Math.max(0, periodMs - answer.ms));
      }
    };
    const loops = [loop('kv', 50, 0), loop('kv', 50, 1), loop('db', 100, 0), loop('db', 100, 2)];
    await sleep(2000);
    const leader = await fixture.cluster.waitForActive();
    const killedAt = Date.now();
    await leader.kill('SIGKILL');
    const next = await fixture.cluster.waitForActive(30000);
    const activeAt = Date.now();
    await sleep(6000);
    running = false;
    await Promise.all(loops);

    const failed = samples.filter((s) => s.status !== 200);
    const window = activeAt - killedAt;
    // Measured at the answer: a fetch in flight at the kill fails after it.
    const firstFail = failed.length ? Math.min(...failed.map((s) => s.at + s.ms)) - killedAt : 0;
    const lastFail = failed.length ? Math.max(...failed.map((s) => s.at + s.ms)) - killedAt : 0;
    process.stdout.write(
      `[cluster kill] killed ${leader.id}; ${next.id} active (takes writes) ${window} ms later\n` +
        `[cluster kill] ${summary(samples, 'kv')}; ${summary(samples, 'db')}\n` +
        `[cluster kill] failed answers from +${firstFail} ms to +${lastFail} ms after the kill; ` +
        `slowest answer ${Math.max(...samples.map((s) => s.ms))} ms\n`,
    );

    expect(samples.filter((s) => s.kind === 'kv' && s.status === 200).length).toBeGreaterThan(50);
    expect(samples.filter((s) => s.kind === 'db' && s.status === 200).length).toBeGreaterThan(20);
    for (const s of failed) {
      expect({ status: s.status, retryAfter: s.retryAfter !== null }).toEqual({
        status: 503,
        retryAfter: true,
      });
      // Only inside the window: none before the kill, none 5 s after the new leader.
      expect(s.at + s.ms).toBeGreaterThanOrEqual(killedAt);
      expect(s.at).toBeLessThan(activeAt + 5000);
    }
    // The right value, always.
    for (const s of samples.filter((x) => x.kind === 'kv' && x.status === 200)) {
      const data = (s.body.secrets as Record<string, { data: unknown }>).clouds?.data;
      expect(data).toEqual(fixture.secret);
    }

    // Every delivered login belongs to a build token in that build's ledger: revoke kills it.
    const logins = samples
      .filter((s) => s.kind === 'db' && s.status === 200)
      .map((s) => {
        const entry = (s.body.secrets as Record<string, { data: Record<string, string> }>)[
          'status-page-db'
        ];
        return { build: s.build, username: entry?.data.username, password: entry?.data.password };
      });
    for (const build of builds) {
      const ledger = await ledgerOf(fixture, build);
      expect(ledger.entries.filter((e) => e.kind === 'build-token').length).toBeGreaterThan(0);
      // At the instance that did not issue most of it: the ledger is shared, fresh.
      const revoked = await call(
        brokers[1]?.url ?? '',
        'POST',
        '/v1/revoke',
        fixture.issuer.mint({ 'build-uuid': build }),
        {},
      );
      expect(revoked.status).toBe(200);
      expect(revoked.body.revoked).toBe(ledger.entries.filter((e) => !e.revoked).length);
    }
    const deadline = Date.now() + 20000;
    let alive = logins.length;
    while (Date.now() < deadline) {
      const results = await Promise.all(
        logins.map((l) => canLogin(l.username ?? '', l.password ?? '')),
      );
      alive = results.filter(Boolean).length;
      if (alive === 0 && (await liveLeases(fixture)).length === 0) break;
      await sleep(500);
    }
    const left = await liveLeases(fixture);
    const active = await fixture.cluster.waitForActive();
    const issuedAt = await Promise.all(
      left.map(async (id) => {
        const res = await baoCall(active.address, 'PUT', 'sys/leases/lookup', {
          token: fixture.cluster.rootToken,
          body: { lease_id: `${fixture.dbMount}/creds/ro/${id}` },
        });
        const data = res.body.data as { issue_time?: string } | undefined;
        return data?.issue_time ? Date.parse(data.issue_time) - killedAt : Number.NaN;
      }),
    );
    process.stdout.write(
      `[cluster kill] ${logins.length} logins delivered over ${builds.length} builds; ` +
        `${alive} alive after revoke, ${left.length} undelivered lease(s) left ` +
        `(issued ${issuedAt.map((t) => `${t} ms`).join(', ') || '-'} from the kill)\n`,
    );
    expect(alive).toBe(0);
    // Known limit (docs/high-availability.md, ADR 0012), seen in about one run in several: a
    // credential the dying leader created for a fetch that then answered 503 (the job never
    // got it) can outlive its build token's revocation; it lives at most the role's TTL. It
    // must be one of the few requests in flight at the kill, never anything delivered.
    expect(left.length).toBeLessThanOrEqual(2);
    for (const t of issuedAt) {
      expect(t).toBeGreaterThanOrEqual(-1000);
      expect(t).toBeLessThanOrEqual(window + 1000);
    }

    // The killed node comes back as a follower; the broker keeps serving.
    await leader.start();
    const after = await call(
      brokers[0]?.url ?? '',
      'POST',
      '/v1/fetch',
      fixture.issuer.mint({ 'build-uuid': newBuild() }),
      { secrets: ['clouds'] },
    );
    expect(after.status).toBe(200);
  });
});
