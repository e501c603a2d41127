/**
 * A broker in-process against the real OpenBao with a test's own policy file: KV entries
 * seeded under the suite's prefix (`{prefix}` in the policy text), the broker's own token
 * with an ACL that reads below the prefix and revokes wrapping tokens, and a loopback Zuul
 * issuer. For suites about what a job gets from a fetch (fetch, ready files, the roles).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { createLogger, type RunningBroker, startBroker } from '../../src/main.js';
import { LogCapture } from './app.js';
import { tokenBrokerDocument } from './config.js';
import { realOpenBao, uniquePrefix } from './real-openbao.js';

export const AUDIENCE = 'https://secrets.example.org';

export interface PolicyBroker {
  readonly broker: RunningBroker;
  readonly issuer: ZuulIssuer;
  readonly logs: LogCapture;
  readonly prefix: string;
  /** The broker's temporary directory (token, policies); removed by close(). */
  readonly dir: string;
  readonly baoAddress: string;
  close(): Promise<void>;
}

export interface PolicyBrokerOptions {
  /** The prefix, when the test needs it before the broker starts (default: a fresh one). */
  readonly prefix?: string;
  /** Where the broker's log goes (default: a new capture). */
  readonly logs?: LogCapture;
}

/**
 * `entries` maps a KV path below the prefix to its data; `policy` is a policy file in
 * which `{prefix}` stands for the suite's prefix.
 */
export async function startPolicyBroker(
  suite: string,
  policy: string,
  entries: Readonly<Record<string, Record<string, unknown>>>,
  options: PolicyBrokerOptions = {},
): Promise<PolicyBroker> {
  const bao = realOpenBao();
  const prefix = options.prefix ?? uniquePrefix(suite);
  const dir = await mkdtemp(path.join(tmpdir(), `zsb-${suite}-`));
  for (const [entry, data] of Object.entries(entries)) {
    await bao.admin.kvWrite('secret', `${prefix}/${entry}`, data);
  }
  await bao.admin.putAclPolicy(
    `zsb-${prefix}`,
    `path "secret/data/${prefix}/*" { capabilities = ["read"] }\npath "auth/token/revoke-accessor" { capabilities = ["update"] }\n`,
  );
  const token = await bao.admin.createToken({
    policies: [`zsb-${prefix}`],
    ttlSeconds: 3600,
    orphan: true,
  });
  await writeFile(path.join(dir, 'token'), token.token, { mode: 0o600 });
  await writeFile(path.join(dir, 'policies.yaml'), policy.replaceAll('{prefix}', prefix));
  const issuer = await ZuulIssuer.start({ modulusLength: 2048 });
  const logs = options.logs ?? new LogCapture();
  let broker: RunningBroker;
  try {
    broker = await startBroker(
      parseConfig({
        ...tokenBrokerDocument({
          issuer: issuer.issuer,
          audience: AUDIENCE,
          openbao: bao.address,
          tokenFile: path.join(dir, 'token'),
          policies: dir,
        }),
        rotation: { enabled: false },
      }),
      { logger: createLogger('info', logs) },
    );
  } catch (error) {
    await issuer.close();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    broker,
    issuer,
    logs,
    prefix,
    dir,
    baoAddress: bao.address,
    close: async () => {
      await broker.close();
      await issuer.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
