/**
 * Runs the broker as its own process (`node --import tsx src/cli/index.ts serve`), so its
 * CPU and memory are measured apart from the load generator. The configuration is
 * validated with the project's parseConfig before it is written.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { freeLoopbackPort, PROJECT_ROOT } from '../../src/dev/openbao-dev-server.js';
import { BENCH_SECRET_NAMES, BENCH_SECRETS, prepareOpenBao } from './openbao-setup.js';

/** The identity the benchmark's tokens carry (zsb's example job). */
export const BENCH_GRANT_MATCH = {
  tenant: 'scs',
  project: 'github.com/SovereignCloudStack/standards',
  secret: 'openbao-id',
  pipeline: ['periodic-daily'],
  job: 'scs-compliance-*',
} as const;

/** One policy file: the three bench secrets, one grant allowing them to the bench job. */
export async function writeBenchPolicies(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const secrets = Object.entries(BENCH_SECRETS).map(
    ([name, kvPath]) => `  ${name}:\n    kv: { mount: secret, path: ${kvPath} }`,
  );
  const match = BENCH_GRANT_MATCH;
  const text = [
    'secrets:',
    ...secrets,
    'grants:',
    '  - name: bench-job',
    '    match:',
    `      tenant: ${match.tenant}`,
    `      project: ${match.project}`,
    `      secret: ${match.secret}`,
    `      pipeline: [${match.pipeline.join(', ')}]`,
    `      job: "${match.job}"`,
    `    allow: [${BENCH_SECRET_NAMES.join(', ')}]`,
    '    ttl: 15m',
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'bench.yaml'), text);
}

/**
 * OpenBao prepared for the benchmark's brokers (JWT role, read token, the broker's own
 * token) and their policy file written: what every broker of a run shares.
 */
export async function prepareBenchBrokers(
  workDir: string,
  bao: { readonly address: string; readonly rootToken: string },
  issuer: { readonly issuer: string; publicKeyPem(): string },
  audience: string,
) {
  const prepared = await prepareOpenBao({
    address: bao.address,
    rootToken: bao.rootToken,
    issuer: issuer.issuer,
    issuerPublicKeyPem: issuer.publicKeyPem(),
    audience,
  });
  const policiesDir = path.join(workDir, 'policies');
  await writeBenchPolicies(policiesDir);
  const shared = {
    workDir,
    policiesDir,
    brokerToken: prepared.brokerToken,
    issuer: issuer.issuer,
    audience,
  } as const;
  return { prepared, shared };
}

export interface BrokerProcessOptions {
  readonly name: string;
  readonly workDir: string;
  readonly policiesDir: string;
  readonly openbaoAddress: string;
  readonly brokerToken: string;
  readonly issuer: string;
  readonly audience: string;
  readonly logLevel: 'warn' | 'error' | 'fatal' | 'info';
  /** Extra node flags for the child, e.g. `--cpu-prof`. */
  readonly nodeArgs?: readonly string[];
  /** A compiled `dist/cli/index.js` to run instead of the sources through tsx. */
  readonly compiledCli?: string | undefined;
  /** More keys of the issuer's entry, e.g. `buildBinding` (bench/build-binding.ts). */
  readonly issuerExtra?: Readonly<Record<string, unknown>>;
}

export interface BrokerProcess {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

async function waitReady(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`broker exited with ${child.exitCode}: ${stderr()}`);
    }
    try {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`broker not ready within 60 s: ${stderr()}`);
}

export async function startBrokerProcess(opts: BrokerProcessOptions): Promise<BrokerProcess> {
  const port = await freeLoopbackPort();
  const tokenFile = path.join(opts.workDir, `${opts.name}-token`);
  await writeFile(tokenFile, opts.brokerToken, { mode: 0o600 });
  const document = {
    listen: { host: '127.0.0.1', port },
    issuers: [{ issuer: opts.issuer, audience: opts.audience, ...opts.issuerExtra }],
    openbao: { address: opts.openbaoAddress, auth: { method: 'token', tokenFile } },
    policies: opts.policiesDir,
    watchPolicies: false,
    // Capacity, not the limiter, is measured: every bench job shares one identity, which
    // the default (20/s per identity) would answer with 429. The limiter still runs.
    limits: {
      perIdentity: { rate: 1_000_000, burst: 1_000_000 },
      global: { rate: 1_000_000, burst: 1_000_000 },
    },
    log: { level: opts.logLevel },
  };
  parseConfig(document, opts.name);
  const configFile = path.join(opts.workDir, `${opts.name}.json`);
  await writeFile(configFile, `${JSON.stringify(document, null, 2)}\n`);

  const child = spawn(
    process.execPath,
    [
      ...(opts.nodeArgs ?? []),
      ...(opts.compiledCli === undefined
        ? ['--import', 'tsx', path.join(PROJECT_ROOT, 'src', 'cli', 'index.ts')]
        : [path.resolve(opts.compiledCli)]),
      'serve',
      '--config',
      configFile,
    ],
    {
      cwd: PROJECT_ROOT,
      env: { ...process.env, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' },
      // Request logs (4xx lines at `warn`) go to /dev/null: cheap, like a log shipper that keeps up.
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderrTail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-4000);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the broker process');
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
  };
  try {
    await waitReady(url, child, () => stderrTail.trim());
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, pid, stop };
}
