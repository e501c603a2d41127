/**
 * The broker's own AppRole secret-id. The new secret-id is made here and recorded before
 * OpenBao learns it (`custom-secret-id`), tested with a real login, then written to the
 * broker's secret-id file (atomically: temporary file, then rename), and only then is the
 * old one destroyed. Tokens the broker already holds stay valid throughout; its next
 * login reads the file again (src/openbao/credential.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { readSecretFile } from '../../openbao/credential.js';
import { OpenBaoError } from '../../openbao/errors.js';
import type { RotationTargets, TokenAdmin } from '../../openbao/interface.js';
import {
  ConflictError,
  RotationConfigError,
  type RotationDriver,
  RotationTestFailed,
} from '../driver.js';

export interface BrokerAppRoleTarget {
  readonly mount: string;
  readonly role: string;
  readonly roleIdFile: string;
  readonly secretIdFile: string;
}

/** A marker of a secret-id that is safe to store and log: the first bytes of its hash. */
export function secretIdMarker(secretId: string): string {
  return `sha256:${createHash('sha256').update(secretId).digest('hex').slice(0, 16)}`;
}

/** The file's secret; a missing or empty file is a setting no retry can fix. */
function readTrimmed(file: string, what: string): string {
  try {
    return readSecretFile(file, what);
  } catch (error) {
    throw new RotationConfigError((error as Error).message);
  }
}

function stringField(data: Readonly<Record<string, unknown>>, key: string): string {
  const v = data[key];
  if (typeof v !== 'string') throw new RotationConfigError(`the pending value lacks ${key}`);
  return v;
}

export function createBrokerAppRoleDriver(
  openbao: Pick<
    RotationTargets,
    'appRoleAddSecretId' | 'appRoleHasSecretId' | 'appRoleDestroySecretId' | 'appRoleLogin'
  > &
    TokenAdmin,
  target: BrokerAppRoleTarget,
): RotationDriver {
  const currentSecretId = () => readTrimmed(target.secretIdFile, 'AppRole secret id');
  return {
    async create() {
      const previous = currentSecretId();
      return {
        base: secretIdMarker(previous),
        pending: { secretId: randomBytes(32).toString('base64url'), previous },
      };
    },
    async checkUnchanged(run) {
      const now = secretIdMarker(currentSecretId());
      if (now === run.base || now === secretIdMarker(stringField(run.pending, 'secretId'))) return;
      throw new ConflictError('the secret-id file changed during the rotation');
    },
    async set(run) {
      const secretId = stringField(run.pending, 'secretId');
      if (await openbao.appRoleHasSecretId(target.mount, target.role, secretId)) return;
      await openbao.appRoleAddSecretId(target.mount, target.role, secretId);
    },
    async test(run) {
      const roleId = readTrimmed(target.roleIdFile, 'AppRole role id');
      let login: { accessor: string };
      try {
        login = await openbao.appRoleLogin(
          target.mount,
          roleId,
          stringField(run.pending, 'secretId'),
        );
      } catch (error) {
        if (error instanceof OpenBaoError && error.kind === 'invalid_request') {
          throw new RotationTestFailed('the new secret-id does not log in');
        }
        throw error;
      }
      await openbao.revokeAccessor(login.accessor);
    },
    async promote(run) {
      const secretId = stringField(run.pending, 'secretId');
      const marker = secretIdMarker(secretId);
      const now = secretIdMarker(currentSecretId());
      if (now === marker) return marker;
      if (now !== run.base)
        throw new ConflictError('the secret-id file changed during the rotation');
      const temporary = `${target.secretIdFile}.zsb-rotating`;
      // A file left by a crash keeps its own mode (and could be a link someone planted):
      // remove it, then create the file afresh, exclusively, as 0600, before the secret-id
      // is written into it.
      rmSync(temporary, { force: true });
      writeFileSync(temporary, `${secretId}\n`, { mode: 0o600, flag: 'wx' });
      renameSync(temporary, target.secretIdFile);
      return marker;
    },
    async finish(run) {
      await openbao.appRoleDestroySecretId(
        target.mount,
        target.role,
        stringField(run.pending, 'previous'),
      );
    },
    async rollback(run) {
      // Only a secret-id that never became current is destroyed.
      const secretId = stringField(run.pending, 'secretId');
      if (secretIdMarker(currentSecretId()) === secretIdMarker(secretId)) return;
      await openbao.appRoleDestroySecretId(target.mount, target.role, secretId);
    },
  };
}
