/**
 * A broker started in-process (startBroker) against the real OpenBao, with one KV secret
 * granted to the default test identity, its OpenBao address behind a FaultProxy (pass-through
 * unless a test says otherwise) and its log kept in a LogCapture. For suites about the broker
 * as a whole (load, HTTP bounds, readiness) rather than about one route.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { createLogger, type RunningBroker, startBroker } from '../../src/main.js';
import { LogCapture } from './app.js';
import { canaryValue } from './canary.js';
import { tokenBrokerDocument } from './config.js';
import { FaultProxy } from './fault-proxy.js';
import { realOpenBao, uniquePrefix } from './real-openbao.js';
import { startZuulIssuer, type ZuulIssuer } from './zuul.js';

export const AUDIENCE = 'https://secrets.example.org';

/** One KV secret `clouds` at `secret/<prefix>/clouds`, granted to the default test identity. */
export function cloudsPolicy(prefix: string, grant: string): string {
  return `secrets:
  clouds:
    kv: { mount: secret, path: ${prefix}/clouds }
grants:
  - name: ${grant}
    match: { tenant: scs, project: github.com/SovereignCloudStack/standards }
    allow: [clouds]
`;
}

export interface KvBroker {
  readonly broker: RunningBroker;
  readonly issuer: ZuulIssuer;
  readonly proxy: FaultProxy;
  readonly logs: LogCapture;
  /** The secret's KV data; its password is a canary that must never leave a 200 body. */
  readonly secret: { readonly username: string; readonly password: string };
  /** OpenBao's path of the secret, as the proxy sees it. */
  readonly kvPath: string;
  /** The broker's own OpenBao token (a canary too). */
  readonly brokerToken: string;
  /** The audit log file. */
  readonly auditFile: string;
  readonly dir: string;
  close(): Promise<void>;
}

/**
 * `extra` is merged over the broker's configuration document (top-level keys replaced).
 * The secret is named `clouds`; rate limits are high unless `extra.limits` says otherwise.
 */
export async function startKvBroker(
  suite: string,
  extra: Record<string, unknown> = {},
): Promise<KvBroker> {
  const bao = realOpenBao();
  const prefix = uniquePrefix(suite);
  const dir = await mkdtemp(path.join(tmpdir(), `zsb-${suite}-`));
  const secret = { username: 'ci', password: canaryValue(suite) };
  await bao.admin.kvWrite('secret', `${prefix}/clouds`, secret);
  await bao.admin.putAclPolicy(
    `zsb-${prefix}`,
    `path "secret/data/${prefix}/*" { capabilities = ["read"] }\n`,
  );
  const brokerToken = (
    await bao.admin.createToken({ policies: [`zsb-${prefix}`], ttlSeconds: 3600, orphan: true })
  ).token;
  await writeFile(path.join(dir, 'token'), brokerToken, { mode: 0o600 });
  await mkdir(path.join(dir, 'policies'));
  await writeFile(path.join(dir, 'policies', 'policies.yaml'), cloudsPolicy(prefix, suite));
  await mkdir(path.join(dir, 'audit'));
  const auditFile = path.join(dir, 'audit', 'audit.jsonl');
  const [issuer, proxy] = await Promise.all([startZuulIssuer(), FaultProxy.start(bao.address)]);
  const logs = new LogCapture();
  let broker: RunningBroker;
  try {
    broker = await startBroker(
      parseConfig({
        ...tokenBrokerDocument({
          issuer: issuer.issuer,
          audience: AUDIENCE,
          openbao: proxy.url,
          tokenFile: path.join(dir, 'token'),
          policies: path.join(dir, 'policies'),
        }),
        rotation: { enabled: false },
        audit: { file: auditFile },
        limits: {
          perIdentity: { rate: 100000, burst: 100000 },
          global: { rate: 100000, burst: 100000 },
        },
        ...extra,
      }),
      { logger: createLogger('info', logs) },
    );
  } catch (error) {
    await Promise.all([issuer.close(), proxy.close()]);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    broker,
    issuer,
    proxy,
    logs,
    secret,
    kvPath: `/v1/secret/data/${prefix}/clouds`,
    brokerToken,
    auditFile,
    dir,
    close: async () => {
      await broker.close();
      await Promise.all([issuer.close(), proxy.close()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
