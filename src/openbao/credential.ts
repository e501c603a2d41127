/**
 * The broker's own OpenBao credential, kept alive: a token from a file is renewed at
 * two thirds of its TTL when renewable; an AppRole or Kubernetes login is repeated at two
 * thirds of its TTL. Failures are retried with backoff until the token expires; `status()` feeds
 * /readyz so an expired credential drains the instance instead of failing every fetch.
 */
import { readFileSync } from 'node:fs';
import { PrivateFileError, readPrivateFileSync } from '../config/private-file.js';
import type { OpenBaoAdmin } from './client.js';

export type CredentialAuth =
  | { readonly method: 'token'; readonly tokenFile: string }
  | {
      readonly method: 'approle';
      readonly roleIdFile: string;
      readonly secretIdFile: string;
      readonly mount: string;
    }
  | {
      readonly method: 'kubernetes';
      readonly role: string;
      readonly jwtFile: string;
      readonly mount: string;
    };

export interface CredentialStatus {
  readonly status: 'ok' | 'degraded' | 'failing';
  readonly detail: string;
}

export interface BrokerCredential {
  token(): string;
  status(): CredentialStatus;
  stop(): void;
}

export interface CredentialLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const RETRY_MS = [1000, 5000, 15000, 30000, 60000];

/**
 * A one-line secret from a file; the error names the file and errno, never the content.
 * With `key` (the configuration key that names the file), a file that group or others may
 * access is refused (src/config/private-file.ts), at start and on every later read.
 */
export function readSecretFile(file: string, what: string, key?: string): string {
  let value: string;
  try {
    value = (key === undefined ? readFileSync(file) : readPrivateFileSync(file, key))
      .toString('utf8')
      .trim();
  } catch (error) {
    if (error instanceof PrivateFileError) throw error;
    throw new Error(
      `cannot read ${what} file ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (value.length === 0) throw new Error(`${what} file ${file} is empty`);
  return value;
}

export async function startBrokerCredential(
  admin: OpenBaoAdmin,
  auth: CredentialAuth,
  logger: CredentialLogger,
  now: () => number = Date.now,
): Promise<BrokerCredential> {
  let token = '';
  /** Epoch ms when the current token expires; Infinity for a token that never does. */
  let expiresAt = Number.POSITIVE_INFINITY;
  let renewable = false;
  let lastError: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let stopped = false;

  async function acquire(): Promise<void> {
    if (auth.method === 'token') {
      token = readSecretFile(auth.tokenFile, 'OpenBao token', 'openbao.auth.tokenFile');
      const self = await admin.lookupSelf(token);
      expiresAt = self.ttlSeconds > 0 ? now() + self.ttlSeconds * 1000 : Number.POSITIVE_INFINITY;
      renewable = self.renewable;
    } else {
      const login =
        auth.method === 'approle'
          ? await admin.appRoleLogin(
              auth.mount,
              readSecretFile(auth.roleIdFile, 'AppRole role id'),
              readSecretFile(auth.secretIdFile, 'AppRole secret id', 'openbao.auth.secretIdFile'),
            )
          : // Read at every login: the kubelet rotates the projected token. Its mode is the
            // kubelet's choice (0644 without fsGroup), so it is not held to the private-file
            // rule; it is short-lived and bound to its audience.
            await admin.jwtLogin(
              auth.mount,
              auth.role,
              readSecretFile(auth.jwtFile, 'service account token'),
            );
      token = login.token;
      expiresAt = login.ttlSeconds > 0 ? now() + login.ttlSeconds * 1000 : Number.POSITIVE_INFINITY;
      renewable = false; // a fresh login is simpler and also survives max TTL
    }
  }

  /**
   * Renews (token) or logs in again (AppRole, Kubernetes); the token file is read again when
   * renewing fails.
   */
  async function refresh(): Promise<void> {
    if (auth.method === 'token' && renewable) {
      try {
        const renewed = await admin.renewSelf(token);
        expiresAt =
          renewed.ttlSeconds > 0 ? now() + renewed.ttlSeconds * 1000 : Number.POSITIVE_INFINITY;
        renewable = renewed.renewable;
        return;
      } catch {
        // An operator may have put a new token in the file: try it below.
      }
    }
    await acquire();
  }

  function schedule(): void {
    if (stopped) return;
    clearTimeout(timer);
    if (expiresAt === Number.POSITIVE_INFINITY) return;
    if (auth.method === 'token' && !renewable) return; // nothing to do before it expires
    const delay = Math.max(1000, ((expiresAt - now()) * 2) / 3);
    timer = setTimeout(() => void run(), delay);
    timer.unref();
  }

  async function run(): Promise<void> {
    try {
      await refresh();
      failures = 0;
      lastError = undefined;
      logger.info(
        { method: auth.method, ttlSeconds: Math.round((expiresAt - now()) / 1000) },
        'OpenBao credential refreshed',
      );
      schedule();
    } catch (error) {
      lastError = error instanceof Error ? error.message : 'refresh failed';
      const delay = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)] ?? 60000;
      failures++;
      logger.error(
        { method: auth.method, retryInMs: delay },
        `OpenBao credential refresh failed: ${lastError}`,
      );
      if (!stopped) {
        clearTimeout(timer);
        timer = setTimeout(() => void run(), delay);
        timer.unref();
      }
    }
  }

  await acquire();
  schedule();

  return {
    token: () => token,
    status(): CredentialStatus {
      const left = expiresAt - now();
      if (left <= 0) return { status: 'failing', detail: 'the broker OpenBao token has expired' };
      if (lastError !== undefined) {
        return {
          status: 'degraded',
          detail: `credential refresh failing, ${Math.round(left / 1000)} s left`,
        };
      }
      if (left === Number.POSITIVE_INFINITY)
        return { status: 'ok', detail: 'token does not expire' };
      return { status: 'ok', detail: `token valid for ${Math.round(left / 1000)} s` };
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
