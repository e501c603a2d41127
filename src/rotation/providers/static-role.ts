/**
 * An OpenBao database static role (`database/rotate-role/:role`). OpenBao makes the new
 * password, sets it on the database and serves it from `static-creds`, all in one call:
 * there is no pending value to keep, so the run records the role's `last_vault_rotation`
 * instead and a repeated `set` after a crash sees that the rotation already happened.
 */
import type { RotationTargets } from '../../openbao/interface.js';
import type { RotationDriver } from '../driver.js';

export function createStaticRoleDriver(
  openbao: Pick<RotationTargets, 'databaseRotateRole' | 'databaseStaticCreds'>,
  mount: string,
  role: string,
): RotationDriver {
  const lastRotation = async () => (await openbao.databaseStaticCreds(mount, role)).lastRotation;
  return {
    async create() {
      return { base: await lastRotation(), pending: {} };
    },
    async checkUnchanged() {},
    async set(run) {
      if ((await lastRotation()) !== run.base) return; // rotated already
      await openbao.databaseRotateRole(mount, role);
    },
    async test(run) {
      if ((await lastRotation()) === run.base) {
        throw new Error('OpenBao has not rotated the static role yet');
      }
    },
    async promote() {
      return lastRotation();
    },
    async finish() {},
    async rollback() {},
  };
}
