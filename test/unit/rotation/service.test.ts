import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  createRotationService,
  type RotationOpenBao,
  UnknownRotationError,
} from '../../../src/rotation/service.js';
import { policySetFrom } from '../../support/app.js';
import { MemoryKv } from '../../support/memory-kv.js';

/** The in-memory KV with every call taking `delayMs`; counts calls that overlap. */
function slowKv(delayMs: number) {
  let inFlight = 0;
  let maxInFlight = 0;
  const kv = new MemoryKv(async (_label, action) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await sleep(delayMs);
      return action();
    } finally {
      inFlight--;
    }
  });
  const unused = async () => {
    throw new Error('unused');
  };
  const openbao: RotationOpenBao = {
    kvRead: (mount, path) => kv.kvRead(mount, path),
    kvWrite: (mount, path, data, options) => kv.kvWrite(mount, path, data, options),
    kvReadWrapped: unused,
    wrapData: unused,
    revokeAccessor: unused,
    databaseRotateRole: unused,
    databaseStaticCreds: unused,
    appRoleAddSecretId: unused,
    appRoleHasSecretId: unused,
    appRoleDestroySecretId: unused,
    appRoleLogin: unused,
  };
  return { openbao, kv, maxInFlight: () => maxInFlight };
}

const POLICY = `
secrets:
  api-key: { kv: { mount: secret, path: app/api-key } }
rotations:
  - secret: api-key
    every: 1d
    generate: { key: token, kind: token, length: 16 }
`;

describe('rotation service', () => {
  it('the scheduler runs one pass at a time, rotates what is due once, and stops cleanly', async () => {
    const kv = slowKv(20);
    const set = policySetFrom(POLICY);
    const service = createRotationService({
      openbao: kv.openbao,
      stateMount: 'secret',
      statePrefix: 'zsb',
      policies: () => set,
      lockTtlSeconds: 60,
      attempts: 1,
      logger: { info() {}, warn() {}, error() {} },
    });
    // Ticks every 10 ms while one pass takes well over 100 ms.
    const stop = service.schedule(0.01);
    await sleep(400);
    await stop();
    // One pass: each step waits for the previous call; a second pass would overlap them.
    expect(kv.maxInFlight()).toBe(1);
    expect(kv.kv.history('secret', 'app/api-key')).toHaveLength(1);
    const [status] = await service.status();
    expect(status).toMatchObject({ name: 'api-key', lastOutcome: 'rotated', failures: 0 });
    expect(status?.lockedBy).toBeUndefined();
    await expect(service.rotate('nope')).rejects.toThrow(UnknownRotationError);
  });
});
