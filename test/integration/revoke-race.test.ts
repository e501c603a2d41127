/**
 * Revocation against issuance in flight, with two broker instances on one OpenBao and this
 * machine's PostgreSQL: after a revoke that answered 200, nothing issued for the build
 * stays alive (checked with real logins and OpenBao's lease list). And a build is
 * (issuer, build-uuid): another Zuul's token carrying the same build-uuid revokes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import type { RunningBroker } from '../../src/main.js';
import { LogCapture } from '../support/app.js';
import {
  canLogin,
  type DynamicFixture,
  setUpDynamic,
  startBrokerFor,
} from '../support/dynamic-setup.js';
import { brokerCall, until } from '../support/http.js';
import { baoRequest, realOpenBao, uniquePrefix } from '../support/real-openbao.js';

const bao = realOpenBao();
const logs = new LogCapture();
let fixture: DynamicFixture;
let zuulA: ZuulIssuer;
let zuulB: ZuulIssuer;
const brokers: { broker: RunningBroker; close(): Promise<void> }[] = [];

interface Login {
  readonly username: string;
  readonly password: string;
}

beforeAll(async () => {
  fixture = await setUpDynamic(uniquePrefix('race'), '15m');
  zuulA = await ZuulIssuer.start({ modulusLength: 2048 });
  zuulB = await ZuulIssuer.start({ modulusLength: 2048 });
  // Two instances behind one load balancer, both trusting both Zuuls.
  for (let i = 0; i < 2; i++) {
    brokers.push(await startBrokerFor(fixture, { issuers: [zuulA, zuulB], logs }));
  }
}, 90000);

afterAll(async () => {
  for (const b of brokers) await b.close();
  await zuulA?.close();
  await zuulB?.close();
  await fixture?.cleanup();
});

const urlOf = (i: number) => brokers[i % brokers.length]?.broker.url ?? '';

/** The database leases OpenBao still holds for the fixture's role. */
async function liveLeases(): Promise<string[]> {
  const res = await baoRequest(
    bao.address,
    'LIST',
    `sys/leases/lookup/${fixture.dbMount}/creds/ro`,
    {
      token: bao.rootToken,
    },
  );
  if (res.status === 404) return [];
  const data = res.body.data as { keys?: string[] } | undefined;
  return data?.keys ?? [];
}

/** Credentials out of a fetch answer; a wrapped one is unwrapped as the job would. */
async function loginsOf(body: Record<string, unknown>): Promise<Login[]> {
  const entry = (body.secrets as Record<string, Record<string, unknown>>)['status-page-db'];
  if (entry === undefined) return [];
  const wrapped = entry.wrapped as { token: string } | undefined;
  if (wrapped) {
    const res = await baoRequest(bao.address, 'POST', 'sys/wrapping/unwrap', {
      token: wrapped.token,
    });
    // A wrapping the broker took back itself can no longer be unwrapped: nothing to log in with.
    if (res.status !== 200) return [];
    const data = res.body.data as { username: string; password: string };
    return [{ username: data.username, password: data.password }];
  }
  const data = entry.data as { username: string; password: string };
  return [{ username: data.username, password: data.password }];
}

async function anyLoginWorks(logins: readonly Login[]): Promise<boolean> {
  const results = await Promise.all(logins.map((l) => canLogin(l.username, l.password)));
  return results.some(Boolean);
}

describe('revoke racing issuance', () => {
  it('leaves no live database login after the final revoke, across two brokers', async () => {
    const before = new Set(await liveLeases());
    const logins: Login[] = [];
    let takenBack = 0;
    let rounds = 0;
    // The race is timing-dependent: several rounds, each with a fresh build.
    for (; rounds < 3; rounds++) {
      const build = crypto.randomUUID().replaceAll('-', '');
      const token = () => zuulA.mint({ 'build-uuid': build });
      // Fetches start 10 ms apart; the three revokes go out as the 2nd, 6th and 10th
      // answers arrive, so that some credentials were delivered before the first revoke
      // and later fetches are still being issued while the revokes run, however loaded
      // the machine is.
      const revokes: Promise<{ status: number }>[] = [];
      let answered = 0;
      const fetches = Array.from({ length: 16 }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, i * 10));
        const answer = await brokerCall(urlOf(i), 'POST', '/v1/fetch', token(), {
          secrets: ['status-page-db'],
          wrap: i % 4 === 3,
        });
        answered++;
        if (answered === 2 || answered === 6 || answered === 10) {
          revokes.push(brokerCall(urlOf(answered), 'POST', '/v1/revoke', token(), {}));
        }
        return answer;
      });
      const answers = await Promise.all(fetches);
      for (const r of await Promise.all(revokes)) expect([200, 503]).toContain(r.status);
      for (const a of answers) {
        // Each fetch either delivered or failed cleanly (never a half-answer).
        expect([200, 502, 503]).toContain(a.status);
        if (a.status === 200) logins.push(...(await loginsOf(a.body)));
        const detail = String(a.body.detail ?? '');
        if (detail.includes('revoked while')) takenBack++;
      }
      const last = await brokerCall(urlOf(rounds), 'POST', '/v1/revoke', token(), {});
      expect(last.status).toBe(200);
    }
    // Figures only, never a value.
    console.info(
      `revoke race: ${rounds} rounds of 16 fetches, ${logins.length} logins delivered, ${takenBack} fetches taken back by their own epoch check`,
    );
    expect(logins.length).toBeGreaterThan(0);
    // OpenBao revokes a revoked token's leases a moment later: wait for that, boundedly.
    await until(async () => !(await anyLoginWorks(logins)), 15000);
    await until(async () => (await liveLeases()).filter((l) => !before.has(l)).length === 0, 15000);
    // And nothing comes back to life (a lease registered late would still be here).
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(await anyLoginWorks(logins)).toBe(false);
    expect((await liveLeases()).filter((l) => !before.has(l))).toEqual([]);
  }, 120000);

  it('a fetch after the revoke gets fresh credentials that work, on either broker', async () => {
    const build = crypto.randomUUID().replaceAll('-', '');
    const token = () => zuulA.mint({ 'build-uuid': build });
    const first = await brokerCall(urlOf(0), 'POST', '/v1/fetch', token(), {
      secrets: ['status-page-db'],
    });
    expect(first.status).toBe(200);
    const revoked = await brokerCall(urlOf(1), 'POST', '/v1/revoke', token(), {});
    expect(revoked.status).toBe(200);
    // Broker 0 still has the build's (now revoked) token cached.
    const again = await brokerCall(urlOf(0), 'POST', '/v1/fetch', token(), {
      secrets: ['status-page-db'],
    });
    expect(again.status).toBe(200);
    const [login] = await loginsOf(again.body);
    expect(login && (await canLogin(login.username, login.password))).toBe(true);
    await brokerCall(urlOf(0), 'POST', '/v1/revoke', token(), {});
  }, 60000);
});

describe('a build is (issuer, build-uuid)', () => {
  it("another Zuul's token with the same build-uuid revokes nothing of this build", async () => {
    const build = crypto.randomUUID().replaceAll('-', '');
    const fetched = await brokerCall(
      urlOf(0),
      'POST',
      '/v1/fetch',
      zuulA.mint({ 'build-uuid': build }),
      { secrets: ['status-page-db'] },
    );
    expect(fetched.status).toBe(200);
    const [login] = await loginsOf(fetched.body);
    if (login === undefined) throw new Error('no login delivered');

    const foreign = await brokerCall(
      urlOf(1),
      'POST',
      '/v1/revoke',
      zuulB.mint({ 'build-uuid': build }),
      {},
    );
    expect(foreign.status).toBe(200);
    expect(foreign.body.revoked).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await canLogin(login.username, login.password)).toBe(true);

    const own = await brokerCall(
      urlOf(1),
      'POST',
      '/v1/revoke',
      zuulA.mint({ 'build-uuid': build }),
      {},
    );
    expect(own.status).toBe(200);
    expect(own.body.revoked).toBe(1);
    await until(async () => !(await canLogin(login.username, login.password)), 15000);
  }, 60000);
});
