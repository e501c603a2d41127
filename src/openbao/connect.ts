/**
 * The broker's connection to OpenBao as configured: the client, and the broker's own
 * credential kept alive behind it. Shared by `zsb serve` and the commands that act as the
 * broker (`zsb rotate`), so both authenticate the same way.
 */
import { createOpenBaoClient } from './client.js';
import {
  type BrokerCredential,
  type CredentialAuth,
  type CredentialLogger,
  startBrokerCredential,
} from './credential.js';

export interface OpenBaoConnectionSettings {
  readonly address?: string | undefined;
  readonly addresses?: readonly string[] | undefined;
  readonly timeoutMs: number;
  readonly maxConnections: number;
  readonly namespace?: string | undefined;
  readonly auth: CredentialAuth;
}

export async function connectOpenBao(
  settings: OpenBaoConnectionSettings,
  logger: CredentialLogger,
) {
  let credential: BrokerCredential | undefined;
  const addresses = settings.addresses ?? (settings.address ? [settings.address] : []);
  const openbao = createOpenBaoClient({
    addresses,
    timeoutMs: settings.timeoutMs,
    maxConnections: settings.maxConnections,
    ...(settings.namespace ? { namespace: settings.namespace } : {}),
    token: () => credential?.token() ?? '',
  });
  credential = await startBrokerCredential(openbao, settings.auth, logger);
  return { openbao, credential, addresses };
}
