/**
 * OpenStack application credentials (docs/rotation.md). The KV secret holds what a
 * clouds.yaml `auth` section needs (`auth_url`, `application_credential_id`,
 * `application_credential_secret`, plus `application_credential_name` and, with an
 * expiry, `expires_at`); its other fields (`region_name`, `interface`, …) are kept.
 *
 * - create: a unique name (prefix, UTC time, random suffix) and a random secret, made
 *   here and recorded before Keystone hears of them: Keystone takes a secret chosen by
 *   the client, so a repeated `set` after a crash creates the same credential, and a
 *   409 for the name means it already exists;
 * - set: the credential is created for the rotator's own user (Keystone lets only the
 *   owner create one), restricted, with the declared expiry, roles and access rules;
 * - test: a real token issue with the new credential (the token is revoked at once);
 * - promote: check-and-set of the new fields on the version the run started from;
 * - finish (after the grace period): the previous credential is deleted;
 * - rollback: the new credential is deleted unless it became current.
 *
 * The rotator's login comes from another KV secret (`rotator`), never from policy files.
 */
import { randomBytes } from 'node:crypto';
import type { KvReader } from '../../openbao/interface.js';
import type { RotationTarget } from '../../policy/types.js';
import { RotationConfigError, type RotationDriver, RotationTestFailed } from '../driver.js';
import type { RotationRun } from '../state.js';
import { KeystoneClient, type KeystoneSession } from './keystone-client.js';
import type { KvSecret, KvSecretRef } from './kv.js';

type Target = Extract<RotationTarget, { kind: 'application-credential' }>;

const SESSION_REUSE_MS = 5 * 60 * 1000;

export interface ApplicationCredentialOptions {
  /** The rotation's name: the default name prefix and the credentials' description. */
  readonly rotation: string;
  /** KV secret with the rotator's Keystone login. */
  readonly rotator: KvSecretRef;
  readonly now?: () => number;
}

/** What a run records before any side effect (the run's `pending`). */
interface Pending {
  readonly name: string;
  readonly secret: string;
  readonly expiresAt?: string;
  /** The credential current when the run started: deleted by finish. */
  readonly previousId?: string;
}

function pendingOf(run: RotationRun): Pending {
  const { name, secret, expiresAt, previousId } = run.pending;
  if (typeof name !== 'string' || typeof secret !== 'string') {
    throw new RotationConfigError('the recorded run lacks the credential name or secret');
  }
  return {
    name,
    secret,
    ...(typeof expiresAt === 'string' ? { expiresAt } : {}),
    ...(typeof previousId === 'string' ? { previousId } : {}),
  };
}

/** 20261201T103000Z: sorts by time, and tells an operator listing credentials their age. */
function stamp(at: number): string {
  return new Date(at)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** Keystone names allow much; a rotation name's characters all fit already. */
function defaultPrefix(rotation: string): string {
  return `zsb-${rotation.replace(/[^A-Za-z0-9._-]/g, '-')}`.slice(0, 200);
}

export function createApplicationCredentialDriver(
  openbao: KvReader,
  secret: KvSecret,
  target: Target,
  options: ApplicationCredentialOptions,
): RotationDriver {
  const now = options.now ?? Date.now;

  async function keystone(): Promise<KeystoneClient> {
    const entry = await openbao.kvRead(options.rotator.mount, options.rotator.path);
    if (entry === null) throw new RotationConfigError('the rotator secret does not exist');
    return new KeystoneClient(entry.data);
  }

  // One login serves the steps of a run (a driver lives for one run): each login costs a
  // password hash on Keystone (about 0.25 s, far more on a busy machine). Kept well below
  // Keystone's token lifetime (1 h by default); a failed step logs in afresh.
  let cached: { at: number; session: Promise<[KeystoneClient, KeystoneSession]> } | undefined;
  async function session(): Promise<[KeystoneClient, KeystoneSession]> {
    if (cached === undefined || now() - cached.at > SESSION_REUSE_MS) {
      const opened = (async (): Promise<[KeystoneClient, KeystoneSession]> => {
        const client = await keystone();
        return [client, await client.session()];
      })();
      cached = { at: now(), session: opened };
      opened.catch(() => {
        cached = undefined;
      });
    }
    return cached.session;
  }
  /** Runs a step with the run's session; a failure drops it, so a retry logs in again. */
  async function withSession<T>(
    use: (client: KeystoneClient, s: KeystoneSession) => Promise<T>,
  ): Promise<T> {
    const [client, s] = await session();
    try {
      return await use(client, s);
    } catch (error) {
      cached = undefined;
      throw error;
    }
  }

  /** This run's value is current: the secret holds its name and secret. */
  const promotedBy = (run: RotationRun) => (data: Readonly<Record<string, unknown>>) => {
    const p = pendingOf(run);
    return (
      data.application_credential_name === p.name && data.application_credential_secret === p.secret
    );
  };

  return {
    finishAfterMs: target.graceSeconds * 1000,

    async create() {
      const current = await secret.current();
      // Fails early (no run recorded) when the rotator secret cannot work.
      await keystone();
      const at = now();
      const previousId = current.data.application_credential_id;
      const prefix = target.namePrefix ?? defaultPrefix(options.rotation);
      const pending: Pending = {
        name: `${prefix}-${stamp(at)}-${randomBytes(3).toString('hex')}`,
        secret: randomBytes(32).toString('base64url'),
        ...(target.expiresAfterSeconds === undefined
          ? {}
          : { expiresAt: new Date(at + target.expiresAfterSeconds * 1000).toISOString() }),
        ...(typeof previousId === 'string' && previousId !== '' ? { previousId } : {}),
      };
      return { base: current.version, pending: { ...pending } };
    },

    checkUnchanged: (run) => secret.checkUnchanged(run, promotedBy(run)),

    async set(run) {
      const p = pendingOf(run);
      await withSession(async (client, s) => {
        if ((await client.find(s, p.name)) !== undefined) return; // set before a crash
        await client.create(s, {
          name: p.name,
          secret: p.secret,
          description: `rotated by zuul-secrets-broker (rotation ${options.rotation})`,
          ...(p.expiresAt === undefined ? {} : { expiresAt: p.expiresAt }),
          ...(target.roles ? { roles: target.roles } : {}),
          ...(target.accessRules ? { accessRules: target.accessRules } : {}),
        });
      });
    },

    async test(run) {
      const p = pendingOf(run);
      const [client, id] = await withSession(async (c, s) => [c, await c.find(s, p.name)] as const);
      if (id === undefined) {
        throw new RotationTestFailed('the new application credential is not in Keystone');
      }
      if (!(await client.authenticates(id, p.secret))) {
        throw new RotationTestFailed('the new application credential does not authenticate');
      }
    },

    async promote(run) {
      const p = pendingOf(run);
      const latest = await secret.current();
      if (promotedBy(run)(latest.data)) return latest.version;
      const [client, id] = await withSession(async (c, s) => [c, await c.find(s, p.name)] as const);
      if (id === undefined) {
        throw new RotationTestFailed('the new application credential is not in Keystone');
      }
      const value = {
        ...latest.data,
        auth_url: client.url,
        application_credential_id: id,
        application_credential_name: p.name,
        application_credential_secret: p.secret,
        ...(p.expiresAt === undefined ? {} : { expires_at: p.expiresAt }),
      };
      if (p.expiresAt === undefined) delete (value as Record<string, unknown>).expires_at;
      // A version other than the base is a foreign edit: promote() refuses it.
      return secret.promote(run, value, promotedBy(run));
    },

    async finish(run) {
      const p = pendingOf(run);
      const previousId = p.previousId;
      if (previousId === undefined) return;
      await withSession(async (client, s) => {
        const ours = await client.find(s, p.name);
        if (ours === previousId) return; // never the credential that is now current
        await client.delete(s, previousId);
      });
    },

    async rollback(run) {
      const p = pendingOf(run);
      const latest = await secret.current();
      if (promotedBy(run)(latest.data)) return; // it is the current value: keep it
      await withSession(async (client, s) => {
        const id = await client.find(s, p.name);
        if (id !== undefined) await client.delete(s, id);
      });
    },
  };
}
