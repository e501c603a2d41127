/**
 * Access to the real OpenBao started by the global setup, for seeding and checking from
 * tests (with the root token). Each suite works under its own random prefix.
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { createOpenBaoClient } from '../../src/openbao/client.js';
import { registerCanary, registerSecretData } from './canary.js';

export function realOpenBao() {
  const address = inject('openbaoAddress');
  const rootToken = inject('openbaoToken');
  const client = createOpenBaoClient({
    addresses: [address],
    timeoutMs: 10000,
    maxConnections: 8,
    token: () => rootToken,
  });
  registerCanary(rootToken);
  // What tests seed and the tokens they create are canaries of the whole-run scan.
  const admin: typeof client = {
    ...client,
    kvWrite: (mount, path, data, options) => {
      registerSecretData(data);
      return client.kvWrite(mount, path, data, options);
    },
    createToken: async (request) => {
      const created = await client.createToken(request);
      registerCanary(created.token);
      return created;
    },
  };
  return { address, rootToken, admin, version: inject('openbaoVersion') };
}

export function uniquePrefix(suite: string): string {
  return `it-${suite}-${randomBytes(4).toString('hex')}`;
}

/** A raw call to OpenBao's HTTP API, for things the broker itself never does (e.g. unwrap). */
export async function baoRequest(
  address: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${address}/v1/${path}`, {
    method,
    headers: {
      ...(options.token ? { 'X-Vault-Token': options.token } : {}),
      'content-type': 'application/json',
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
