import { describe, expect, it } from 'vitest';
import { createDynamicCheck, type TokenRoleAnswer } from '../../../src/http/dynamic-check.js';
import { policySetFrom } from '../../support/app.js';

const KV_ONLY = policySetFrom(`secrets:
  clouds:
    kv: { mount: secret, path: zuul/clouds }
grants:
  - name: g
    match: { tenant: scs }
    allow: [clouds]
`);

function setup(answer: TokenRoleAnswer, dynamic = true) {
  const logs: Array<{ level: string; object: Record<string, unknown>; message: string }> = [];
  const probes: string[] = [];
  let clock = 0;
  const state = { answer };
  const check = createDynamicCheck({
    policies: () => (dynamic ? withDynamic() : KV_ONLY),
    role: 'zsb-build',
    probe: async (role) => {
      probes.push(role);
      return state.answer;
    },
    logger: {
      info: (object, message) => logs.push({ level: 'info', object: object as never, message }),
      warn: (object, message) => logs.push({ level: 'warn', object: object as never, message }),
    },
    now: () => clock,
  });
  return { check, logs, probes, state, tick: (ms: number) => (clock += ms) };
}

/** The KV set plus one dynamic (token) secret. */
function withDynamic() {
  const clouds = KV_ONLY.secrets.get('clouds');
  if (clouds === undefined) throw new Error('fixture');
  const secrets = new Map(KV_ONLY.secrets);
  secrets.set('e2e-token', { ...clouds, source: { kind: 'token', policies: ['e2e'] } });
  return { ...KV_ONLY, secrets };
}

describe('dynamic check', () => {
  it('is ok without asking OpenBao when no dynamic secret is defined', async () => {
    const t = setup('missing', false);
    expect(await t.check.refresh()).toEqual({
      status: 'ok',
      detail: 'no dynamic secrets in the policies',
    });
    expect(t.probes).toEqual([]);
  });

  it('is ok when the role exists', async () => {
    const t = setup('present');
    expect(await t.check.refresh()).toEqual({
      status: 'ok',
      detail: 'token role zsb-build present for 1 dynamic secret',
    });
  });

  it('is degraded, and says so in the log once, when the role is missing', async () => {
    const t = setup('missing');
    const result = await t.check.refresh();
    expect(result.status).toBe('degraded');
    expect(result.detail).toContain('token role zsb-build does not exist in OpenBao');
    expect(result.detail).toContain('`zsb policy compile --apply` creates it');
    await t.check.refresh();
    expect(t.logs).toEqual([
      {
        level: 'warn',
        object: { check: 'dynamic', role: 'zsb-build', detail: result.detail },
        message: 'dynamic secrets cannot be issued or checked',
      },
    ]);
  });

  it('cannot tell when the broker may not read the role', async () => {
    const t = setup('forbidden');
    const result = await t.check.refresh();
    expect(result.status).toBe('degraded');
    expect(result.detail).toContain('does not allow read on auth/token/roles/zsb-build');
  });

  it('asks again after 5 s while not ok, after 30 s once ok, and logs the recovery', async () => {
    const t = setup('missing');
    await t.check.status();
    t.tick(4000);
    await t.check.status();
    expect(t.probes).toHaveLength(1);
    t.state.answer = 'present';
    t.tick(1000);
    expect((await t.check.status()).status).toBe('ok');
    expect(t.probes).toHaveLength(2);
    t.tick(29000);
    await t.check.status();
    expect(t.probes).toHaveLength(2);
    t.tick(1000);
    await t.check.status();
    expect(t.probes).toHaveLength(3);
    expect(t.logs.map((l) => l.level)).toEqual(['warn', 'info']);
  });
});
