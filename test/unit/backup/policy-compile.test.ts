/**
 * `zsb policy compile` with the backup option: exactly what taking backups needs (the raft
 * snapshot read, the lock and canary under the broker's state prefix), nothing without it,
 * and never the restore's sudo.
 */
import { describe, expect, it } from 'vitest';
import { compileOpenBaoSetup, DEFAULT_COMPILE_OPTIONS } from '../../../src/policy/compile.js';
import { formatProblem, parsePolicyFiles } from '../../../src/policy/load.js';
import { cloudsPolicy } from '../../support/kv-broker.js';

function policySet() {
  const loaded = parsePolicyFiles([{ name: 'p.yaml', text: cloudsPolicy('team', 'g') }], {
    maxTtlSeconds: 3600,
  });
  if (!loaded.ok) throw new Error(loaded.problems.map(formatProblem).join('\n'));
  return loaded.set;
}

describe('policy compile: backups', () => {
  it('grants the snapshot read and the lock and canary paths with backup: true', () => {
    const acl = compileOpenBaoSetup(policySet(), {
      ...DEFAULT_COMPILE_OPTIONS,
      stateMount: 'kv',
      statePrefix: 'brokers/zsb',
      backup: true,
    }).brokerPolicy;
    expect(acl).toContain('path "sys/storage/raft/snapshot" {\n  capabilities = ["read"]\n}');
    expect(acl).toContain(
      'path "kv/data/brokers/zsb/backup/*" {\n  capabilities = ["create", "read", "update"]\n}',
    );
    expect(acl).not.toContain('sudo');
    expect(acl).not.toContain('snapshot-force');
  });

  it('grants nothing of it without the option', () => {
    const acl = compileOpenBaoSetup(policySet(), DEFAULT_COMPILE_OPTIONS).brokerPolicy;
    expect(acl).not.toContain('raft/snapshot');
    expect(acl).not.toContain('/backup/');
  });
});
