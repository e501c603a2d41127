/**
 * The broker's connection to OpenBao as configured: the client (addresses, timeouts,
 * TLS), and the broker's own credential kept alive behind it. Shared by `zsb serve` and
 * the commands that act as the broker (`zsb rotate`), so both connect the same way.
 */
import { createOpenBaoClient, type OpenBaoCallObservation } from './client.js';
import {
  type BrokerCredential,
  type CredentialAuth,
  type CredentialLogger,
  startBrokerCredential,
} from './credential.js';
import { type OpenBaoTlsFiles, readTlsFiles } from './tls-files.js';

export interface OpenBaoConnectionSettings {
  readonly address?: string | undefined;
  readonly addresses?: readonly string[] | undefined;
  readonly timeoutMs: number;
  readonly maxConnections: number;
  readonly namespace?: string | undefined;
  /** PEM files: a private CA, and a client certificate and key. */
  readonly tls?: OpenBaoTlsFiles | undefined;
  readonly auth: CredentialAuth;
}

export async function connectOpenBao(
  settings: OpenBaoConnectionSettings,
  logger: CredentialLogger,
  observe?: (observation: OpenBaoCallObservation) => void,
) {
  let credential: BrokerCredential | undefined;
  const addresses = settings.addresses ?? (settings.address ? [settings.address] : []);
  const openbao = createOpenBaoClient({
    addresses,
    timeoutMs: settings.timeoutMs,
    maxConnections: settings.maxConnections,
    ...(settings.namespace ? { namespace: settings.namespace } : {}),
    ...(settings.tls ? { tls: readTlsFiles(settings.tls) } : {}),
    token: () => credential?.token() ?? '',
    ...(observe ? { observe } : {}),
  });
  // Renewed (token) or logged in again (AppRole, Kubernetes) before it expires; see /readyz.
  credential = await startBrokerCredential(openbao, settings.auth, logger);
  return { openbao, credential, addresses };
}
