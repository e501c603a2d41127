/**
 * `zsb dev`: the embedded playground. A real OpenBao dev server from the pinned binary,
 * a loopback Zuul-like issuer, the example secrets seeded, the broker serving the
 * project's policies/ with a least-privilege OpenBao token of its own. Nothing here is
 * for production: the OpenBao server keeps everything in memory and dies with the process.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { parseConfig } from '../config/load.js';
import { DEFAULT_MAX_TTL_SECONDS } from '../config/schema.js';
import { type RunningBroker, startBroker } from '../main.js';
import { createOpenBaoClient } from '../openbao/client.js';
import { compileOpenBaoSetup, DEFAULT_COMPILE_OPTIONS } from '../policy/compile.js';
import { formatProblem, loadPolicyDir } from '../policy/load.js';
import { type DevOpenBaoCluster, isDevCluster, startDevOpenBaoCluster } from './openbao-cluster.js';
import { type DevOpenBao, startDevOpenBao } from './openbao-dev-server.js';
import { DEFAULT_ZUUL_TOKEN, ZuulIssuer } from './zuul-issuer.js';

export const DEV_STATE_DIR = '.zsb-dev';
export const SIGNING_KEY_FILE = 'signing-key.json';
export const STATE_FILE = 'state.json';

/** What `zsb dev token` and the printed example need from a running playground. */
export interface PlaygroundState {
  readonly brokerUrl: string;
  readonly issuer: string;
  readonly audience: string;
  readonly openbaoAddress: string;
}

/** The example entries that policies/scs.yaml points at. Values are made up each start. */
function exampleSecrets(): Array<{ path: string; data: Record<string, string> }> {
  const word = () => randomBytes(12).toString('base64url');
  return [
    {
      path: 'zuul/scs/standards/clouds',
      data: { username: 'ci', password: word(), auth_url: 'https://keystone.example.org/v3' },
    },
    {
      path: 'zuul/scs/github.com/SovereignCloudStack/standards/deploy',
      data: {
        private_key: `-----BEGIN OPENSSH PRIVATE KEY-----\n${word()}\n-----END OPENSSH PRIVATE KEY-----\n`,
      },
    },
    {
      path: 'zuul/scs/github.com/SovereignCloudStack/status-page/deploy',
      data: {
        private_key: `-----BEGIN OPENSSH PRIVATE KEY-----\n${word()}\n-----END OPENSSH PRIVATE KEY-----\n`,
      },
    },
    { path: 'zuul/scs/status-page/admin', data: { username: 'admin', password: word() } },
  ];
}

export interface PlaygroundOptions {
  readonly host: string;
  readonly port: number;
  readonly policies: string;
  readonly stateDir: string;
  readonly logger: Logger;
  /** RSA modulus of the playground issuer (Zuul uses 4096). */
  readonly modulusLength?: number;
  /** A 3-node raft cluster instead of one dev server (`zsb dev --ha`, high-availability.md). */
  readonly ha?: boolean;
}

export interface Playground {
  readonly state: PlaygroundState;
  readonly openbao: DevOpenBao | DevOpenBaoCluster;
  readonly rootToken: string;
  stop(): Promise<void>;
}

export async function startPlayground(options: PlaygroundOptions): Promise<Playground> {
  const stopped: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stopped.reverse()) await stop().catch(() => undefined);
  };
  try {
    const bao: DevOpenBao | DevOpenBaoCluster = options.ha
      ? await startDevOpenBaoCluster()
      : await startDevOpenBao();
    stopped.push(bao.stop);
    const addresses: readonly string[] = isDevCluster(bao) ? bao.addresses : [bao.address];
    const admin = createOpenBaoClient({
      addresses,
      timeoutMs: 5000,
      maxConnections: 4,
      token: () => bao.rootToken,
    });
    for (const entry of exampleSecrets()) await admin.kvWrite('secret', entry.path, entry.data);
    // The broker's own OpenBao set-up, exactly as `zsb policy compile --apply` makes it.
    const loaded = await loadPolicyDir(options.policies, {
      maxTtlSeconds: DEFAULT_MAX_TTL_SECONDS,
    });
    if (!loaded.ok)
      throw new Error(
        `policies in ${options.policies} are invalid:\n${loaded.problems.map(formatProblem).join('\n')}`,
      );
    const setup = compileOpenBaoSetup(loaded.set, DEFAULT_COMPILE_OPTIONS);
    await admin.putAclPolicy('zsb-broker', setup.brokerPolicy);
    await admin.putAclPolicy(DEFAULT_COMPILE_OPTIONS.buildPolicy, setup.buildPolicy);
    await admin.putTokenRole(DEFAULT_COMPILE_OPTIONS.buildTokenRole, { ...setup.buildTokenRole });
    const brokerToken = await admin.createToken({
      policies: ['zsb-broker'],
      ttlSeconds: 24 * 3600,
      orphan: true,
      displayName: 'zsb-dev-broker',
    });

    const issuer = await ZuulIssuer.start(
      options.modulusLength === undefined ? {} : { modulusLength: options.modulusLength },
    );
    stopped.push(() => issuer.close());

    await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
    stopped.push(() => rm(options.stateDir, { recursive: true, force: true }));
    const tokenFile = path.join(options.stateDir, 'broker-token');
    await writeFile(tokenFile, brokerToken.token, { mode: 0o600 });
    await issuer.writeSigningKeyFile(path.join(options.stateDir, SIGNING_KEY_FILE));

    const config = parseConfig(
      {
        listen: { host: options.host, port: options.port },
        issuers: [{ issuer: issuer.issuer, audience: DEFAULT_ZUUL_TOKEN.audience }],
        openbao: { addresses, auth: { method: 'token', tokenFile } },
        policies: options.policies,
      },
      'zsb dev',
    );
    const broker: RunningBroker = await startBroker(config, { logger: options.logger });
    stopped.push(() => broker.close());

    const state: PlaygroundState = {
      brokerUrl: broker.url,
      issuer: issuer.issuer,
      audience: DEFAULT_ZUUL_TOKEN.audience,
      openbaoAddress: bao.address,
    };
    await writeFile(
      path.join(options.stateDir, STATE_FILE),
      `${JSON.stringify(state, null, 2)}\n`,
      { mode: 0o600 },
    );
    return { state, openbao: bao, rootToken: bao.rootToken, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
