/**
 * Generated values in a KV v2 secret, and the KV half of every KV-backed provider:
 * the current value is the latest version, promotion is a check-and-set write on the
 * version the rotation started from, and an already promoted run is recognised by its
 * pending value being the latest data.
 */
import { OpenBaoError } from '../../openbao/errors.js';
import type { KvEntry, KvReader, KvWriter } from '../../openbao/interface.js';
import type { GenerateSpec } from '../../policy/types.js';
import { ConflictError, type CreatedValue, type RotationDriver, sameJson } from '../driver.js';
import { generateValue } from '../generate.js';
import type { RotationRun } from '../state.js';

export interface KvSecretRef {
  readonly mount: string;
  readonly path: string;
}

export class KvSecret {
  constructor(
    private readonly openbao: KvReader & KvWriter,
    readonly ref: KvSecretRef,
  ) {}

  /** The latest version; version 0 and no data when the entry does not exist yet. */
  async current(): Promise<KvEntry> {
    return (await this.openbao.kvRead(this.ref.mount, this.ref.path)) ?? { data: {}, version: 0 };
  }

  /** `promotedBy` recognises this run's own value (default: the pending value itself). */
  async checkUnchanged(
    run: RotationRun,
    promotedBy: (data: Readonly<Record<string, unknown>>) => boolean = (data) =>
      sameJson(data, run.pending),
  ): Promise<void> {
    const latest = await this.current();
    if (latest.version === run.base) return;
    if (promotedBy(latest.data)) return; // promoted by this run already
    throw new ConflictError(
      `the secret changed during the rotation (version ${String(run.base)} → ${latest.version}); nothing was overwritten`,
    );
  }

  /** Writes `value` (default: the pending value) by check-and-set on the run's base. */
  async promote(
    run: RotationRun,
    value: Readonly<Record<string, unknown>> = run.pending,
    promotedBy: (data: Readonly<Record<string, unknown>>) => boolean = (data) =>
      sameJson(data, value),
  ): Promise<number> {
    try {
      const written = await this.openbao.kvWrite(this.ref.mount, this.ref.path, value, {
        cas: Number(run.base),
      });
      return written.version;
    } catch (error) {
      if (!(error instanceof OpenBaoError && error.kind === 'cas_mismatch')) throw error;
      const latest = await this.current();
      if (promotedBy(latest.data)) return latest.version;
      throw new ConflictError(
        `the secret changed during the rotation (version ${String(run.base)} → ${latest.version}); nothing was overwritten`,
      );
    }
  }
}

/** A KV secret whose `generate.key` field gets a new value; nobody else has to learn it. */
export function createGeneratedKvDriver(secret: KvSecret, spec: GenerateSpec): RotationDriver {
  return {
    async create(): Promise<CreatedValue> {
      const current = await secret.current();
      return { base: current.version, pending: { ...current.data, ...generateValue(spec) } };
    },
    checkUnchanged: (run) => secret.checkUnchanged(run),
    async set() {},
    async test() {},
    promote: (run) => secret.promote(run),
    async finish() {},
    async rollback() {},
  };
}
