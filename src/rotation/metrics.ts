/**
 * Prometheus metrics of rotations, registered on the broker's registry. The `rotation`
 * label is a rotation name from the policy files (a closed set chosen by the security
 * admins), never a value, a path with placeholders filled, or a token.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Rotation } from '../policy/types.js';
import type { RotationOutcome } from './protocol.js';

export function createRotationMetrics(
  registry: Registry,
): (rotation: Rotation, outcome: RotationOutcome) => void {
  const runs = new Counter({
    name: 'zsb_rotations_total',
    help: 'Rotation runs by rotation and outcome (rotated, aborted, failed, busy, lost-lock, stopped)',
    labelNames: ['rotation', 'outcome'],
    registers: [registry],
  });
  const lastSuccess = new Gauge({
    name: 'zsb_rotation_last_success_timestamp_seconds',
    help: 'When each rotation last completed (seen by this instance)',
    labelNames: ['rotation'],
    registers: [registry],
  });
  const failing = new Gauge({
    name: 'zsb_rotation_failing',
    help: '1 while the last run of a rotation failed or aborted, else 0',
    labelNames: ['rotation'],
    registers: [registry],
  });
  return (rotation, outcome) => {
    if (outcome.outcome === 'not-due' || outcome.outcome === 'waiting') return;
    runs.inc({ rotation: rotation.name, outcome: outcome.outcome });
    if (outcome.outcome === 'rotated') {
      lastSuccess.set({ rotation: rotation.name }, Date.now() / 1000);
      failing.set({ rotation: rotation.name }, 0);
    } else if (outcome.outcome === 'failed' || outcome.outcome === 'aborted') {
      failing.set({ rotation: rotation.name }, 1);
    }
  };
}
