/**
 * Rotations as the broker and the CLI run them: turns each policy rotation (and the
 * broker's own AppRole secret-id) into a driver, runs one on demand or every due one,
 * reports status, and schedules due runs inside `zsb serve`.
 */
import { hostname } from 'node:os';
import type { KvReader, KvWriter, RotationTargets, TokenAdmin } from '../openbao/interface.js';
import { parseDuration } from '../policy/duration.js';
import type { Rotation, SecretDefinition } from '../policy/types.js';
import type { RotationDriver } from './driver.js';
import { isDue, nextDue } from './due.js';
import {
  type RotationBoundary,
  type RotationLogger,
  type RotationOutcome,
  runRotation,
} from './protocol.js';
import { createApplicationCredentialDriver } from './providers/application-credential.js';
import { createBrokerAppRoleDriver } from './providers/broker-approle.js';
import { createCommandDriver } from './providers/command.js';
import { createGeneratedKvDriver, KvSecret } from './providers/kv.js';
import { createPostgresDriver } from './providers/postgres.js';
import { createStaticRoleDriver } from './providers/static-role.js';
import { createRotationStateStore, type RotationRecord, type RotationStateStore } from './state.js';

export type RotationOpenBao = KvReader & KvWriter & RotationTargets & TokenAdmin;

/** Name of the rotation of the broker's own AppRole secret-id. */
export const BROKER_SECRET_ID_ROTATION = 'broker-approle-secret-id';

export interface RotationServiceOptions {
  readonly openbao: RotationOpenBao;
  readonly stateMount: string;
  readonly statePrefix: string;
  /** The current policy set's rotations and secrets (it may be reloaded at any time). */
  readonly policies: () =>
    | {
        readonly rotations: readonly Rotation[];
        readonly secrets: ReadonlyMap<string, SecretDefinition>;
      }
    | undefined;
  readonly lockTtlSeconds: number;
  readonly attempts: number;
  readonly logger: RotationLogger;
  /** The broker's own AppRole secret-id, when configured for rotation. */
  readonly brokerSecretId?: {
    readonly mount: string;
    readonly role: string;
    readonly roleIdFile: string;
    readonly secretIdFile: string;
    readonly everySeconds: number;
  };
  readonly instanceId?: string;
  readonly retryBaseMs?: number;
  readonly now?: () => number;
  /** Called with every outcome (metrics, audit). */
  readonly onOutcome?: (rotation: Rotation, outcome: RotationOutcome) => void | Promise<void>;
}

export interface RotationStatus {
  readonly name: string;
  readonly schedule: string;
  readonly lastSuccess?: string;
  readonly lastOutcome?: string;
  readonly nextRun: string;
  /** The recorded step of a run in progress. */
  readonly step?: string;
  /** A promoted run waiting for its grace period retires the previous value after this. */
  readonly finishAfter?: string;
  readonly lastError?: { readonly at: string; readonly step: string; readonly message: string };
  readonly failures: number;
  readonly lockedBy?: string;
}

export interface RotateOptions {
  readonly force?: boolean;
  readonly signal?: AbortSignal;
  readonly onBoundary?: (boundary: RotationBoundary) => Promise<void> | void;
}

export interface RotationService {
  /** Every rotation this broker knows, by name. */
  list(): readonly Rotation[];
  rotate(name: string, options?: RotateOptions): Promise<RotationOutcome>;
  /** Runs every due rotation, one after another. */
  rotateDue(options?: Omit<RotateOptions, 'force'>): Promise<Map<string, RotationOutcome>>;
  status(): Promise<readonly RotationStatus[]>;
  /** Starts the in-process scheduler; the returned function stops it (and waits). */
  schedule(intervalSeconds: number): () => Promise<void>;
}

export class UnknownRotationError extends Error {
  override readonly name = 'UnknownRotationError';
}

function describeSchedule(rotation: Rotation): string {
  const base =
    rotation.schedule !== undefined
      ? `cron ${rotation.schedule}`
      : `every ${rotation.everySeconds}s`;
  return base + (rotation.jitterSeconds ? ` (+ up to ${rotation.jitterSeconds}s jitter)` : '');
}

export function createRotationService(options: RotationServiceOptions): RotationService {
  const now = options.now ?? Date.now;
  const store: RotationStateStore = createRotationStateStore(options.openbao, {
    mount: options.stateMount,
    prefix: options.statePrefix,
  });
  const instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${now().toString(36)}`;

  function brokerRotation(): Rotation | undefined {
    const b = options.brokerSecretId;
    if (b === undefined) return undefined;
    return {
      name: BROKER_SECRET_ID_ROTATION,
      everySeconds: b.everySeconds,
      target: { kind: 'kv' }, // not used: the driver below owns its target
      location: { file: '(configuration)', line: 0, column: 0 },
    };
  }

  function list(): readonly Rotation[] {
    const own = brokerRotation();
    return [...(options.policies()?.rotations ?? []), ...(own ? [own] : [])];
  }

  function kvSecret(secrets: ReadonlyMap<string, SecretDefinition>, name: string): KvSecret {
    const source = secrets.get(name)?.source;
    if (source?.kind !== 'kv') throw new UnknownRotationError(`secret ${name} is not a KV secret`);
    return new KvSecret(options.openbao, { mount: source.mount, path: source.path });
  }

  function driverFor(rotation: Rotation, signal?: AbortSignal): RotationDriver {
    const b = options.brokerSecretId;
    if (rotation.name === BROKER_SECRET_ID_ROTATION && b !== undefined) {
      return createBrokerAppRoleDriver(options.openbao, b);
    }
    const secrets = options.policies()?.secrets ?? new Map<string, SecretDefinition>();
    const target = rotation.target;
    if (target.kind === 'static-role') {
      return createStaticRoleDriver(options.openbao, target.mount, target.role);
    }
    const secret = kvSecret(secrets, rotation.secret ?? '');
    if (target.kind === 'application-credential') {
      return createApplicationCredentialDriver(options.openbao, secret, target, {
        rotation: rotation.name,
        rotator: kvSecret(secrets, target.rotator).ref,
      });
    }
    if (target.kind === 'command') {
      return createCommandDriver(options.openbao, secret, target, {
        rotation: rotation.name,
        ...(rotation.generate ? { generate: rotation.generate } : {}),
        ...(signal ? { shutdown: { signal } } : {}),
      });
    }
    const spec = rotation.generate;
    if (spec === undefined)
      throw new UnknownRotationError(`rotation ${rotation.name} has no generate`);
    if (target.kind === 'postgres') {
      return createPostgresDriver(options.openbao, secret, spec, {
        admin: kvSecret(secrets, target.admin).ref,
        ...(target.users ? { users: target.users } : {}),
      });
    }
    return createGeneratedKvDriver(secret, spec);
  }

  async function rotateOne(rotation: Rotation, opts: RotateOptions): Promise<RotationOutcome> {
    const outcome = await runRotation(rotation.name, driverFor(rotation, opts.signal), {
      store,
      instanceId,
      lockTtlMs: options.lockTtlSeconds * 1000,
      force: opts.force ?? false,
      isDue: (record, at) => isDue(rotation, record, at),
      logger: options.logger,
      attempts: options.attempts,
      ...(options.retryBaseMs === undefined ? {} : { retryBaseMs: options.retryBaseMs }),
      now,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onBoundary ? { onBoundary: opts.onBoundary } : {}),
    });
    await options.onOutcome?.(rotation, outcome);
    return outcome;
  }

  const service: RotationService = {
    list,

    async rotate(name, opts = {}) {
      const rotation = list().find((r) => r.name === name);
      if (rotation === undefined) throw new UnknownRotationError(`no rotation named ${name}`);
      return rotateOne(rotation, opts);
    },

    async rotateDue(opts = {}) {
      const outcomes = new Map<string, RotationOutcome>();
      for (const rotation of list()) {
        if (opts.signal?.aborted) break;
        try {
          outcomes.set(rotation.name, await rotateOne(rotation, opts));
        } catch (error) {
          // One broken rotation (OpenBao down, unknown secret) does not stop the others.
          options.logger.error(
            { rotation: rotation.name, error: (error as Error).message },
            'rotation could not run',
          );
          outcomes.set(rotation.name, {
            outcome: 'failed',
            step: 'start',
            reason: (error as Error).message,
          });
        }
      }
      return outcomes;
    },

    async status() {
      const at = new Date(now());
      return Promise.all(
        list().map(async (rotation): Promise<RotationStatus> => {
          const { record } = await store.read(rotation.name);
          return statusOf(rotation, record, at);
        }),
      );
    },

    schedule(intervalSeconds) {
      const controller = new AbortController();
      let running: Promise<unknown> | undefined;
      // One pass at a time: a pass longer than the interval skips ticks instead of
      // starting a second pass beside it.
      const tick = () => {
        if (running !== undefined || controller.signal.aborted) return;
        running = service
          .rotateDue({ signal: controller.signal })
          .catch((error: unknown) => {
            options.logger.error({ error: (error as Error).message }, 'rotation scheduler failed');
          })
          .finally(() => {
            running = undefined;
          });
      };
      tick();
      const timer = setInterval(tick, intervalSeconds * 1000);
      timer.unref();
      return async () => {
        clearInterval(timer);
        controller.abort();
        await running;
      };
    },
  };

  function statusOf(rotation: Rotation, record: RotationRecord, at: Date): RotationStatus {
    return {
      name: rotation.name,
      schedule: describeSchedule(rotation),
      ...(record.lastSuccess ? { lastSuccess: record.lastSuccess } : {}),
      ...(record.lastOutcome ? { lastOutcome: record.lastOutcome } : {}),
      nextRun: nextDue(rotation, record, at).toISOString(),
      ...(record.run ? { step: record.run.step } : {}),
      ...(record.run?.finishAfter ? { finishAfter: record.run.finishAfter } : {}),
      ...(record.lastError ? { lastError: record.lastError } : {}),
      failures: record.failures ?? 0,
      ...(record.holder && record.holder.until > at.getTime()
        ? { lockedBy: record.holder.id }
        : {}),
    };
  }

  return service;
}

/** `rotation.brokerSecretId.every` from the configuration, in seconds. */
export function everySecondsOf(every: number | string): number {
  const seconds = parseDuration(every);
  if (seconds === undefined)
    throw new Error(`rotation.brokerSecretId.every: '${every}' is not a duration`);
  return seconds;
}

/** The settings of the configuration file (`openbao.*`, `rotation.*`) a rotation service uses. */
export function rotationSettings(config: {
  readonly openbao: {
    readonly stateMount: string;
    readonly statePrefix: string;
    readonly auth: Parameters<typeof brokerSecretIdSettings>[0];
  };
  readonly rotation: {
    readonly lockTtlSeconds: number;
    readonly attempts: number;
    readonly brokerSecretId?: Parameters<typeof brokerSecretIdSettings>[1];
  };
}): Pick<
  RotationServiceOptions,
  'stateMount' | 'statePrefix' | 'lockTtlSeconds' | 'attempts' | 'brokerSecretId'
> {
  return {
    stateMount: config.openbao.stateMount,
    statePrefix: config.openbao.statePrefix,
    lockTtlSeconds: config.rotation.lockTtlSeconds,
    attempts: config.rotation.attempts,
    ...brokerSecretIdSettings(config.openbao.auth, config.rotation.brokerSecretId),
  };
}

/** The broker's own secret-id rotation from `openbao.auth` and `rotation.brokerSecretId`. */
export function brokerSecretIdSettings(
  auth:
    | { readonly method: 'token' | 'kubernetes' }
    | {
        readonly method: 'approle';
        readonly mount: string;
        readonly roleIdFile: string;
        readonly secretIdFile: string;
      },
  own: { readonly role: string; readonly every: number | string } | undefined,
): Pick<RotationServiceOptions, 'brokerSecretId'> {
  if (own === undefined || auth.method !== 'approle') return {};
  return {
    brokerSecretId: {
      mount: auth.mount,
      role: own.role,
      roleIdFile: auth.roleIdFile,
      secretIdFile: auth.secretIdFile,
      everySeconds: everySecondsOf(own.every),
    },
  };
}

/** The audit event of a finished run (runs that changed nothing are not audited). */
export function auditedOutcome(
  rotation: Rotation,
  outcome: RotationOutcome,
  trigger: 'schedule' | 'manual',
):
  | {
      secret: string;
      outcome: 'rotated' | 'failed' | 'aborted';
      trigger: 'schedule' | 'manual';
      version?: number;
      reason?: string;
    }
  | undefined {
  switch (outcome.outcome) {
    case 'rotated':
      return {
        secret: rotation.name,
        outcome: 'rotated',
        trigger,
        ...(typeof outcome.version === 'number' ? { version: outcome.version } : {}),
      };
    case 'failed':
    case 'aborted':
      return { secret: rotation.name, outcome: outcome.outcome, trigger, reason: outcome.reason };
    default:
      return undefined;
  }
}
