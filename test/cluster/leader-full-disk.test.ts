/**
 * The active node's raft directory on a full file system while jobs fetch KV and database
 * secrets: the leader fails to store the log entry and steps down, the others elect a new
 * one. For the broker's clients it must look like a leader kill: failures only around the
 * election, each 503 with Retry-After, and every lease in its build's ledger, dead after
 * revoke. Every node's raft data is on its own small tmpfs (we do not know in advance
 * which one will lead).
 */
import path from 'node:path';
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
import { closeTmpfsFixture, fillFileSystem, mountTmpfs } from './support/tmpfs.js';

const mounted: string[] = [];
let fixture: ClusterFixture;
let broker: RunningBroker;
let ballast = '';

beforeAll(async () => {
  fixture = await startClusterFixture('leaderfull', {
    prepareDataDir: async (_nodeId, dataDir) => {
      mountTmpfs(dataDir, '64m', 'full-disk');
      mounted.push(dataDir);
    },
  });
  broker = await fixture.startBroker();
}, 180000);

afterAll(async () => {
  await closeTmpfsFixture(fixture, mounted, ballast);
});

interface Sample extends Answer {
  readonly kind: 'kv' | 'db';
  readonly build: string;
}

describe("the leader's raft disk full", () => {
  it('looks like a leader loss to jobs: 503 with Retry-After around the election, every delivered login dies', async () => {
    const builds = Array.from({ length: 3 }, newBuild);
    const samples: Sample[] = [];
    let running = true;
    const loop = async (kind: 'kv' | 'db', periodMs: number) => {
      for (let i = 0; running && i < 100000; i++) {
        const build = builds[i % builds.length] ?? '';
        const answer = await call(
          broker.url,
          'POST',
          '/v1/fetch',
          fixture.issuer.mint({ 'build-uuid': build }),
          { secrets: [kind === 'kv' ? 'clouds' : 'status-page-db'] },
        );
        samples.push({ ...answer, kind, build });
        await sleep(Math.max(0, periodMs - answer.ms));
      }
    };
    const loops = [loop('kv', 50), loop('db', 100), loop('db', 100)];
    await sleep(1500);
    const leader = await fixture.cluster.waitForActive();
    ballast = path.join(leader.dataDir, 'ballast');
    const filledAt = Date.now();
    await fillFileSystem(ballast, 1024 * 1024, 128, 3);
    // The full leader steps down at its next write; wait for another node to take writes.
    const deadline = Date.now() + 30000;
    let next = await fixture.cluster.waitForActive();
    while (next.id === leader.id && Date.now() < deadline) {
      await sleep(100);
      next = await fixture.cluster.waitForActive();
    }
    const activeAt = Date.now();
    // It may also panic on its full disk ("failed to store data"): then it answers nothing.
    const fullLeader = await baoCall(leader.address, 'GET', 'sys/health').catch(() => ({
      status: 0,
    }));
    await sleep(6000);
    running = false;
    await Promise.all(loops);
    const ready = await fetch(`${broker.url}/readyz`);
    const readiness = (await ready.json()) as { checks: { openbao: { detail: string } } };

    const failed = samples.filter((s) => s.status !== 200);
    const statuses = new Map<string, number>();
    for (const s of failed) {
      const key = `${s.status}${s.retryAfter ? '+Retry-After' : ''}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
    }
    process.stdout.write(
      `[cluster leader-full] ${leader.id}'s raft disk filled; ${next.id} active ${activeAt - filledAt} ms later; ` +
        `the full node's sys/health ${fullLeader.status}\n` +
        `[cluster leader-full] ${samples.length} fetches, ${failed.length} failed (${[...statuses].map(([k, v]) => `${k}×${v}`).join(' ') || 'none'}), ` +
        `last failure ${failed.length ? Math.max(...failed.map((s) => s.at + s.ms)) - filledAt : 0} ms after the fill; /readyz ${ready.status}: ${readiness.checks.openbao.detail}\n`,
    );
    const reasons = fixture.logs
      .entries()
      .filter((e) => e.status === 502)
      .map((e) => String(e.reason));
    if (reasons.length)
      process.stdout.write(`[cluster leader-full] 502 reasons: ${reasons.join(' | ')}\n`);
    expect(next.id).not.toBe(leader.id);
    for (const s of failed) {
      expect({ status: s.status, retryAfter: s.retryAfter !== null }).toEqual({
        status: 503,
        retryAfter: true,
      });
      expect(s.at).toBeLessThan(activeAt + 5000);
    }
    for (const s of samples.filter((x) => x.kind === 'kv' && x.status === 200)) {
      expect((s.body.secrets as Record<string, { data: unknown }>).clouds?.data).toEqual(
        fixture.secret,
      );
    }

    const logins = samples
      .filter((s) => s.kind === 'db' && s.status === 200)
      .map((s) => {
        const data = (s.body.secrets as Record<string, { data: Record<string, string> }>)[
          'status-page-db'
        ]?.data;
        return { username: data?.username ?? '', password: data?.password ?? '' };
      });
    expect(logins.length).toBeGreaterThan(10);
    for (const build of builds) {
      const ledger = await ledgerOf(fixture, build);
      const revoked = await call(
        broker.url,
        'POST',
        '/v1/revoke',
        fixture.issuer.mint({ 'build-uuid': build }),
        {},
      );
      expect(revoked.status).toBe(200);
      expect(revoked.body.revoked).toBe(ledger.entries.filter((e) => !e.revoked).length);
    }
    const until = Date.now() + 20000;
    let alive = logins.length;
    let lastCount = -1;
    let stable = 0;
    while (Date.now() < until) {
      alive = (await Promise.all(logins.map((l) => canLogin(l.username, l.password)))).filter(
        Boolean,
      ).length;
      // Done when nothing delivered logs in and the lease list stopped shrinking (OpenBao
      // revokes a token's leases lazily) for three looks in a row.
      const count = alive === 0 ? (await liveLeases(fixture)).length : -1;
      stable = count >= 0 && count === lastCount ? stable + 1 : 0;
      lastCount = count;
      if (count === 0 || stable >= 3) break;
      await sleep(500);
    }
    expect(alive).toBe(0);
    // What is left in OpenBao's lease list, with when it was issued relative to the fill.
    const left = await liveLeases(fixture);
    const leader2 = await fixture.cluster.waitForActive();
    const details = await Promise.all(
      left.map(async (id) => {
        const res = await baoCall(leader2.address, 'PUT', 'sys/leases/lookup', {
          token: fixture.cluster.rootToken,
          body: { lease_id: `${fixture.dbMount}/creds/ro/${id}` },
        });
        const data = res.body.data as { issue_time?: string; ttl?: number } | undefined;
        return {
          issuedAfterFill: data?.issue_time ? Date.parse(data.issue_time) - filledAt : Number.NaN,
          ttl: data?.ttl ?? Number.NaN,
        };
      }),
    );
    process.stdout.write(
      `[cluster leader-full] ${logins.length} logins delivered, ${alive} alive after revoke; ` +
        `${left.length} undelivered lease(s) left in OpenBao (issued ${details.map((d) => `+${d.issuedAfterFill} ms`).join(', ') || '-'} after the fill)\n`,
    );
    // Known limit (docs/high-availability.md): a credential OpenBao created while its leader
    // was failing to store logs can survive the build token's revocation. The job never got
    // it (its fetch answered 503); it was issued inside the step-down, and lives at most the
    // database role's TTL (1 h here), not the grant's: OpenBao no longer ties it to the token.
    for (const d of details) {
      expect(d.issuedAfterFill).toBeGreaterThanOrEqual(-1000);
      expect(d.issuedAfterFill).toBeLessThan(activeAt - filledAt + 1000);
      expect(d.ttl).toBeLessThanOrEqual(3600);
    }
    expect(left.length).toBeLessThanOrEqual(
      samples.filter((x) => x.kind === 'db' && x.status !== 200).length,
    );
  });
});
