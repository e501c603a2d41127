/**
 * Under a flood of invalid tokens, valid requests keep being served and OpenBao receives no
 * request caused by the flood: tokens are verified before anything else happens, invalid
 * ones never count against a rate limit, and unknown kids or bad signatures cost at most
 * one key set refetch per spacing at the issuer.
 */
import { Agent, request } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { UNKNOWN_KID_REFRESH_SPACING_MS } from '../../src/identity/keyset.js';
import { badTokens } from '../support/bad-tokens.js';
import { AUDIENCE, type KvBroker, startKvBroker } from '../support/kv-broker.js';
import { startZuulIssuer, type ZuulIssuer } from '../support/zuul.js';

const FLOOD_REQUESTS = 3000;
const FLOOD_CONNECTIONS = 32;
/** Kinds of invalid token in the flood, by their name in bad-tokens.ts. */
const FLOOD_KINDS = [
  'garbage',
  'empty string',
  'tampered payload',
  "second issuer's key claiming the first iss",
  'expired',
  'wrong aud',
  'wrong iss',
  'unknown kid',
  'alg none',
  'oversize (> 8 KiB)',
];

let fx: KvBroker;
let attacker: ZuulIssuer;

beforeAll(async () => {
  [fx, attacker] = await Promise.all([startKvBroker('flood'), startZuulIssuer()]);
});
afterAll(async () => {
  await fx?.close();
  await attacker?.close();
});

interface Answer {
  readonly status: number;
  readonly text: string;
}

function get(agent: Agent, route: string, token: string): Promise<Answer> {
  const url = new URL(route, fx.broker.url);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { agent, method: 'GET', headers: { authorization: `Bearer ${token}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.once('error', reject);
      },
    );
    req.once('error', reject);
    req.end();
  });
}

it('serves every valid request during a flood of invalid tokens, which reaches neither OpenBao nor a rate limit', async () => {
  const all = await badTokens(fx.issuer, { audience: AUDIENCE, second: attacker });
  const flood = FLOOD_KINDS.map((name) => {
    const found = all.find((t) => t.name === name);
    if (!found) throw new Error(`no bad token named ${name}`);
    return found;
  });
  const agent = new Agent({ keepAlive: true, maxSockets: FLOOD_CONNECTIONS + 1 });
  const expectValid = (answer: Answer) => {
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({
      data: fx.secret,
      version: 1,
      lease: null,
      expiresAt: null,
    });
  };

  // What one valid request costs at OpenBao, measured on a quiet broker.
  fx.proxy.resetCount();
  const CALIBRATION = 5;
  for (let i = 0; i < CALIBRATION; i++) {
    expectValid(await get(agent, '/v1/secrets/clouds', fx.issuer.mint()));
  }
  const perValid = fx.proxy.requests / CALIBRATION;
  expect(perValid).toBeGreaterThanOrEqual(1);
  expect(Number.isInteger(perValid)).toBe(true);
  const calibrationPaths = new Set(fx.proxy.seen.map((r) => `${r.method} ${r.path}`));

  fx.proxy.resetCount();
  const keySetFetchesBefore = fx.issuer.jwksRequests;
  const floodStatuses = new Map<number, number>();
  let next = 0;
  let floodDone = false;
  const floodLoop = async () => {
    while (next < FLOOD_REQUESTS) {
      const token = flood[next % flood.length]?.token ?? '';
      next += 1;
      const answer = await get(agent, '/v1/secrets/clouds', token);
      floodStatuses.set(answer.status, (floodStatuses.get(answer.status) ?? 0) + 1);
      expect(answer.text).not.toContain(fx.secret.password);
    }
  };
  const valid: Answer[] = [];
  const trickle = async () => {
    // A steady trickle for as long as the flood lasts (and at least a few requests).
    while (!floodDone || valid.length < 10) {
      valid.push(await get(agent, '/v1/secrets/clouds', fx.issuer.mint()));
    }
  };
  const trickling = trickle();
  const floodStarted = performance.now();
  await Promise.all(Array.from({ length: FLOOD_CONNECTIONS }, floodLoop));
  const floodMs = performance.now() - floodStarted;
  floodDone = true;
  await trickling;

  // Every flood request was refused as unauthenticated: none was rate limited or served.
  expect(Object.fromEntries(floodStatuses)).toEqual({ 401: FLOOD_REQUESTS });
  for (const answer of valid) expectValid(answer);
  // OpenBao saw exactly what the valid requests needed, and nothing else.
  expect(fx.proxy.requests).toBe(valid.length * perValid);
  for (const seen of fx.proxy.seen) {
    expect(calibrationPaths.has(`${seen.method} ${seen.path}`)).toBe(true);
  }
  // Unknown kids refresh the key set at most once per UNKNOWN_KID_REFRESH_SPACING_MS, bad
  // signatures at most once per minRefetchIntervalSeconds (30 s): a flood of them is not a
  // flood at the issuer (ADR 0010).
  const unknownKidBound = 1 + Math.ceil(floodMs / UNKNOWN_KID_REFRESH_SPACING_MS);
  expect(fx.issuer.jwksRequests - keySetFetchesBefore).toBeLessThanOrEqual(unknownKidBound + 1);

  // The log kept its bound on 401 lines and none of the flood's tokens.
  const text = fx.logs.text();
  for (const { token } of flood) {
    if (token.length > 16) expect(text).not.toContain(token);
  }
  const requestLines = fx.logs.entries().filter((e) => e.msg === 'request' && e.status === 401);
  expect(requestLines.length).toBeLessThan(FLOOD_REQUESTS);
  agent.destroy();
}, 120000);
