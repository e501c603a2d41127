/**
 * The container image, built from the Dockerfile and run for real under podman against the
 * suite's real OpenBao and a Zuul-like issuer: the broker as operators start it, non-root,
 * on a read-only root file system, with every capability dropped and no privilege
 * escalation. The credential is mounted as Kubernetes mounts a Secret with `fsGroup`
 * (root-owned, group-readable 0440) and the policies as it mounts a ConfigMap.
 */
import { chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canaryValue, registerCanary, registerToken } from '../support/canary.js';
import { ConfigMapVolume } from '../support/configmap-volume.js';
import { until } from '../support/http.js';
import { ROOT } from '../support/process.js';
import { realOpenBao, uniquePrefix } from '../support/real-openbao.js';
import { startZuulIssuer, type ZuulIssuer } from '../support/zuul.js';
import {
  BASE_IMAGE,
  BROKER_IMAGE,
  buildBrokerImage,
  freePort,
  podman,
  run,
} from './support/podman.js';

const AUDIENCE = 'https://secrets.example.org';
const UID = 1000;

function policies(prefix: string, allow: readonly string[]): string {
  return `secrets:
  clouds:
    kv: { mount: secret, path: ${prefix}/clouds }
  deploy-key:
    kv: { mount: secret, path: ${prefix}/deploy }
grants:
  - name: image-test
    match: { tenant: scs, project: github.com/SovereignCloudStack/standards }
    allow: [${allow.join(', ')}]
`;
}

let work: string;
let issuer: ZuulIssuer;
let prefix: string;
let clouds: { username: string; password: string };
const containers: string[] = [];

beforeAll(async () => {
  const built = await buildBrokerImage();
  const size = Number(
    (await podman(['image', 'inspect', '--format', '{{.Size}}', BROKER_IMAGE])).stdout,
  );
  const base = Number(
    (await podman(['image', 'inspect', '--format', '{{.Size}}', BASE_IMAGE])).stdout,
  );
  console.log(
    `deploy: image ${BROKER_IMAGE} built in ${built.seconds.toFixed(1)} s: ` +
      `${(size / 1e6).toFixed(1)} MB (base ${(base / 1e6).toFixed(1)} MB + broker ${((size - base) / 1e6).toFixed(1)} MB)`,
  );

  const bao = realOpenBao();
  prefix = uniquePrefix('image');
  clouds = { username: 'ci', password: canaryValue('image-clouds') };
  await bao.admin.kvWrite('secret', `${prefix}/clouds`, clouds);
  await bao.admin.kvWrite('secret', `${prefix}/deploy`, { private_key: canaryValue('image-key') });
  await bao.admin.putAclPolicy(
    `zsb-${prefix}`,
    `path "secret/data/${prefix}/*" { capabilities = ["read"] }\n`,
  );
  const token = (
    await bao.admin.createToken({ policies: [`zsb-${prefix}`], ttlSeconds: 3600, orphan: true })
  ).token;
  // The broker's own OpenBao token: never in a container log or command output.
  registerCanary(token);
  work = await mkdtemp(path.join(tmpdir(), 'zsb-image-'));
  // As a Kubernetes Secret volume with defaultMode 0400 and fsGroup 1000 looks inside the pod.
  await mkdir(path.join(work, 'credential'));
  const tokenFile = path.join(work, 'credential', 'token');
  await writeFile(tokenFile, token, { mode: 0o440 });
  await chown(tokenFile, 0, UID);
  issuer = await startZuulIssuer();
}, 600000);

afterAll(async () => {
  for (const name of containers) {
    await run('podman', ['logs', name], { kind: `container ${name} log` });
    await run('podman', ['rm', '-f', '-t', '0', name]);
  }
  await issuer?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

interface Broker {
  readonly name: string;
  readonly url: string;
  readonly policies: ConfigMapVolume;
}

/** Starts the image as Kubernetes would run it (see the chart's securityContext). */
async function startBroker(label: string, watchPolicies: boolean): Promise<Broker> {
  const port = await freePort();
  const dir = path.join(work, label);
  await mkdir(dir);
  const volume = new ConfigMapVolume(path.join(dir, 'policies'));
  await volume.write({ 'policies.yaml': policies(prefix, ['clouds']) });
  await writeFile(
    path.join(dir, 'config.yaml'),
    `listen: { host: 127.0.0.1, port: ${port} }
issuers:
  - { issuer: "${issuer.issuer}", audience: "${AUDIENCE}" }
openbao:
  address: "${realOpenBao().address}"
  auth: { method: token, tokenFile: /run/zsb/credential/token }
policies: /etc/zsb/policies
watchPolicies: ${watchPolicies}
`,
  );
  const name = `zsb-ci-${label}-${prefix}`;
  await podman([
    'run',
    '--detach',
    '--name',
    name,
    // The broker and its peers (OpenBao, the issuer) are on the host's loopback.
    '--network',
    'host',
    // As Kubernetes' readOnlyRootFilesystem: no tmpfs on /tmp or /run either.
    '--read-only',
    '--read-only-tmpfs=false',
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges',
    '--volume',
    `${path.join(dir, 'config.yaml')}:/etc/zsb/config.yaml:ro`,
    '--volume',
    `${volume.dir}:/etc/zsb/policies:ro`,
    '--volume',
    `${path.join(work, 'credential')}:/run/zsb/credential:ro`,
    BROKER_IMAGE,
  ]);
  containers.push(name);
  return { name, url: `http://127.0.0.1:${port}`, policies: volume };
}

async function fetchSecret(url: string, name: string) {
  const token = issuer.mint();
  registerToken(token);
  const res = await fetch(`${url}/v1/fetch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ secrets: [name] }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function ready(url: string): Promise<Record<string, unknown>> {
  let body: Record<string, unknown> = {};
  await until(async () => {
    const res = await fetch(`${url}/readyz`).catch(() => undefined);
    if (res === undefined) return false;
    body = (await res.json()) as Record<string, unknown>;
    return res.status === 200;
  }, 30000).catch(() => {
    throw new Error(`not ready within 30 s: ${JSON.stringify(body)}`);
  });
  return body;
}

async function logsOf(name: string): Promise<string> {
  const logs = await podman(['logs', name], { kind: `container ${name} log` });
  return logs.stdout + logs.stderr;
}

describe('the broker image', () => {
  it('holds dist/, the production dependencies and the example policies, and no more', async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const names = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.devDependencies)];
    const script = [
      'ls -A /app',
      'echo ---',
      ...names.map((n) => `[ -e /app/node_modules/${n} ] && echo "${n} yes" || echo "${n} no"`),
      'echo ---',
      'id -u',
    ].join('; ');
    const listed = await podman([
      'run',
      '--rm',
      '--network',
      'none',
      '--entrypoint',
      'sh',
      BROKER_IMAGE,
      '-c',
      script,
    ]);
    const [app = '', modules = '', uid = ''] = listed.stdout.split('---\n');
    expect(app.trim().split('\n').sort()).toEqual([
      'dist',
      'node_modules',
      'package-lock.json',
      'package.json',
      'policies',
    ]);
    const installed = new Set(
      modules
        .split('\n')
        .filter((line) => line.endsWith(' yes'))
        .map((line) => line.slice(0, -4)),
    );
    expect([...installed].sort()).toEqual(Object.keys(pkg.dependencies).sort());
    expect(uid.trim()).toBe(String(UID));
    const user = await podman(['image', 'inspect', '--format', '{{.Config.User}}', BROKER_IMAGE]);
    expect(user.stdout.trim()).toBe(`${UID}:${UID}`);
  });

  it('serves /healthz, /readyz and a job fetch, reloads policies on SIGHUP and stops on SIGTERM', async () => {
    const started = performance.now();
    const broker = await startBroker('signals', false);
    const readiness = await ready(broker.url);
    console.log(
      `deploy: container ready ${((performance.now() - started) / 1000).toFixed(1)} s after podman run`,
    );
    expect(readiness).toMatchObject({
      ready: true,
      checks: { openbao: { status: 'ok' }, policies: { status: 'ok' }, issuers: { status: 'ok' } },
    });
    expect((await fetch(`${broker.url}/healthz`)).status).toBe(200);

    const fetched = await fetchSecret(broker.url, 'clouds');
    expect(fetched.status).toBe(200);
    expect(fetched.body).toMatchObject({ secrets: { clouds: { data: clouds } } });

    // The process runs as uid 1000 without any capability, on a read-only root.
    const inside = await podman([
      'exec',
      broker.name,
      'sh',
      '-c',
      'id -u; grep CapEff /proc/1/status; touch /app/x /tmp/x 2>&1; true',
    ]);
    expect(inside.stdout).toContain(`${UID}\nCapEff:\t0000000000000000\n`);
    expect(inside.stdout.match(/Read-only file system/g)).toHaveLength(2);

    // watchPolicies is off: a changed policy applies only on SIGHUP.
    await broker.policies.write({ 'policies.yaml': policies(prefix, ['clouds', 'deploy-key']) });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await fetchSecret(broker.url, 'deploy-key')).status).toBe(403);
    await podman(['kill', '--signal', 'HUP', broker.name]);
    await until(async () => (await fetchSecret(broker.url, 'deploy-key')).status === 200, 10000);
    expect(await logsOf(broker.name)).toContain('"msg":"policies reloaded"');

    const stopping = performance.now();
    await podman(['stop', '--time', '30', broker.name]);
    const stopSeconds = (performance.now() - stopping) / 1000;
    console.log(`deploy: SIGTERM to exit ${stopSeconds.toFixed(1)} s`);
    const exit = await podman(['inspect', '--format', '{{.State.ExitCode}}', broker.name]);
    expect(exit.stdout.trim()).toBe('0');
    expect(stopSeconds).toBeLessThan(15);
    const log = await logsOf(broker.name);
    expect(log).toContain('"msg":"shutting down"');
    expect(log).toContain('"msg":"stopped"');
  });

  it('reloads a ConfigMap volume update (the ..data symlink swap) without a signal', async () => {
    const broker = await startBroker('configmap', true);
    await ready(broker.url);
    expect((await fetchSecret(broker.url, 'deploy-key')).status).toBe(403);
    await broker.policies.write({ 'policies.yaml': policies(prefix, ['clouds', 'deploy-key']) });
    await until(async () => (await fetchSecret(broker.url, 'deploy-key')).status === 200, 10000);
    // A second update, as the kubelet makes on the next change of the ConfigMap.
    await broker.policies.write({ 'policies.yaml': policies(prefix, ['deploy-key']) });
    await until(async () => (await fetchSecret(broker.url, 'clouds')).status === 403, 10000);
    expect((await fetchSecret(broker.url, 'deploy-key')).status).toBe(200);
    const metrics = await (await fetch(`${broker.url}/metrics`)).text();
    expect(metrics).toMatch(/zsb_policy_reloads_total\{outcome="applied"\} [1-9]/);
    expect(metrics).not.toMatch(/zsb_policy_reloads_total\{outcome="rejected"\} [1-9]/);
    await podman(['stop', '--time', '30', broker.name]);
  });
});
