/**
 * What the test suites install in OpenBao for a broker from a policy document: the
 * document parsed (failing on any problem), compiled, and its broker policy, build policy
 * and build token role written under names made from the suite's prefix. Used by the
 * dynamic-secret set-up, the raft cluster fixture and the real-Zuul stack alike.
 */
import type { OpenBaoAdmin } from '../../src/openbao/client.js';
import { compileOpenBaoSetup } from '../../src/policy/compile.js';
import { formatProblem, parsePolicyFiles } from '../../src/policy/load.js';

export interface InstalledBrokerSetup {
  readonly names: {
    readonly stateMount: string;
    readonly statePrefix: string;
    readonly buildTokenRole: string;
    readonly buildPolicy: string;
    readonly maxTtlSeconds: number;
  };
  /** The name of the compiled broker ACL policy, `broker-{prefix}`. */
  readonly brokerPolicy: string;
}

/** Parses `policyText` as the file `fileName`, compiles it and writes the result as `admin`. */
export async function installBrokerSetup(
  admin: Pick<OpenBaoAdmin, 'putAclPolicy' | 'putTokenRole'>,
  fileName: string,
  policyText: string,
  prefix: string,
): Promise<InstalledBrokerSetup> {
  const loaded = parsePolicyFiles([{ name: fileName, text: policyText }], {
    maxTtlSeconds: 3600,
  });
  if (!loaded.ok) throw new Error(loaded.problems.map(formatProblem).join('\n'));
  const names = {
    stateMount: 'secret',
    statePrefix: `zsb-${prefix}`,
    buildTokenRole: `build-${prefix}`,
    buildPolicy: `build-${prefix}`,
    maxTtlSeconds: 3600,
  };
  const setup = compileOpenBaoSetup(loaded.set, names);
  const brokerPolicy = `broker-${prefix}`;
  await admin.putAclPolicy(brokerPolicy, setup.brokerPolicy);
  await admin.putAclPolicy(names.buildPolicy, setup.buildPolicy);
  await admin.putTokenRole(names.buildTokenRole, { ...setup.buildTokenRole });
  return { names, brokerPolicy };
}
