/**
 * The Helm chart (deploy/helm/zuul-secrets-broker): `helm lint`, `helm template` with the
 * default values and with the production example (ci/production-values.yaml), every
 * rendered object validated against the Kubernetes schemas (kubernetes-validate --strict),
 * and assertions on what was rendered: nothing runs as root or with privileges, every
 * container has limits, the probes name routes the broker serves, the rendered broker
 * configuration passes the broker's own schema and every file it names is mounted.
 * No Kubernetes API server is available here: nothing is applied to a cluster.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { loadPolicyDir } from '../../src/policy/load.js';
import { buildTestApp } from '../support/app.js';
import { TEST_POLICY } from '../support/policies.js';
import { type Run, run, TOOLS } from './support/podman.js';

const CHART = 'deploy/helm/zuul-secrets-broker';
const PRODUCTION = `${CHART}/ci/production-values.yaml`;
const HELM = path.join(TOOLS, 'bin', 'helm');
/** Custom resources of the Prometheus Operator: no schema in kubernetes-validate. */
const CUSTOM_KINDS = new Set(['ServiceMonitor', 'PrometheusRule']);

// biome-ignore lint/suspicious/noExplicitAny: rendered Kubernetes objects are walked as plain data
type K8sObject = Record<string, any>;

let work: string;
type Values = 'default' | 'production' | 'kubernetes';
const rendered: Record<Values, K8sObject[]> = { default: [], production: [], kubernetes: [] };
const files: Record<string, string> = {};

async function helm(args: readonly string[]): Promise<Run> {
  return run(HELM, args, {
    env: { ...process.env, HELM_CACHE_HOME: work, HELM_CONFIG_HOME: work },
  });
}

/** `helm template` with EXTRA arguments; the objects in rendered[NAME], the file in files[NAME]. */
async function template(name: Values, extra: readonly string[]): Promise<K8sObject[]> {
  const started = performance.now();
  const result = await helm(['template', 'zsb', CHART, '--namespace', 'zsb', ...extra]);
  expect(result.stderr, result.stderr).toBe('');
  expect(result.code).toBe(0);
  console.log(
    `deploy: helm template (${name}) ${((performance.now() - started) / 1000).toFixed(2)} s`,
  );
  const file = path.join(work, `${name}.yaml`);
  await writeFile(file, result.stdout);
  files[name] = file;
  rendered[name] = parseAllDocuments(result.stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((doc): doc is K8sObject => doc !== null);
  return rendered[name];
}

/** kubernetes-validate --strict on a rendered file (it prints the first error only). */
function validate(file: string): Promise<Run> {
  return run(path.join(TOOLS, 'venv', 'bin', 'kubernetes-validate'), ['--strict', file], {
    env: process.env,
    cwd: work,
  });
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'zsb-helm-'));
  await template('default', []);
  await template('production', ['-f', PRODUCTION]);
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function ofKind(objects: readonly K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

function only(objects: readonly K8sObject[], kind: string): K8sObject {
  const found = ofKind(objects, kind);
  expect(found, kind).toHaveLength(1);
  return found[0] as K8sObject;
}

/** Every pod template: the Deployment's and the backup CronJob's. */
function podSpecs(objects: readonly K8sObject[]): { owner: string; spec: K8sObject }[] {
  return objects.flatMap((o) => {
    if (o.kind === 'Deployment') return [{ owner: o.metadata.name, spec: o.spec.template.spec }];
    if (o.kind === 'CronJob')
      return [{ owner: o.metadata.name, spec: o.spec.jobTemplate.spec.template.spec }];
    return [];
  });
}

function brokerConfig(objects: readonly K8sObject[]) {
  const map = ofKind(objects, 'ConfigMap').find((m) => m.metadata.name.endsWith('-config'));
  const text = map?.data?.['config.yaml'];
  expect(typeof text).toBe('string');
  const document = parseAllDocuments(text as string)[0]?.toJS() as K8sObject;
  return { document, config: parseConfig(document, 'rendered config.yaml') };
}

describe.each(['default', 'production'] as const)('the chart with the %s values', (name) => {
  it('lints clean', async () => {
    const result = await helm([
      'lint',
      '--strict',
      CHART,
      ...(name === 'production' ? ['-f', PRODUCTION] : []),
    ]);
    expect(result.stdout).toContain('0 chart(s) failed');
    expect(result.code).toBe(0);
  });

  it('renders objects that pass the Kubernetes schemas (strict)', async () => {
    const started = performance.now();
    const result = await validate(files[name] ?? '');
    console.log(
      `deploy: kubernetes-validate (${name}) ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const objects = rendered[name];
    const schemaKinds = objects.filter((o) => !CUSTOM_KINDS.has(o.kind));
    const passed = result.stdout.match(/ passed for resource /g) ?? [];
    expect(passed).toHaveLength(schemaKinds.length);
    for (const kind of objects.filter((o) => CUSTOM_KINDS.has(o.kind)).map((o) => o.kind)) {
      expect(result.stdout + result.stderr).toContain(`Couldn't find schema for kind ${kind}`);
    }
  });

  it('runs no container as root, privileged or writable, and every one with limits', () => {
    const pods = podSpecs(rendered[name]);
    expect(pods.length).toBeGreaterThan(0);
    for (const { owner, spec } of pods) {
      expect(spec.securityContext, owner).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(spec.securityContext.runAsUser, owner).toBeGreaterThan(0);
      expect(spec.hostNetwork ?? false).toBe(false);
      expect(spec.automountServiceAccountToken, owner).toBe(false);
      for (const container of [...(spec.initContainers ?? []), ...spec.containers]) {
        const where = `${owner}/${container.name}`;
        expect(container.securityContext, where).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
        expect(container.securityContext.privileged ?? false, where).toBe(false);
        expect(
          container.securityContext.runAsUser ?? spec.securityContext.runAsUser,
          where,
        ).not.toBe(0);
        expect(container.resources?.limits?.cpu, where).toBeDefined();
        expect(container.resources?.limits?.memory, where).toBeDefined();
        expect(container.resources?.requests?.memory, where).toBeDefined();
      }
      // Secret volumes as 0400: with fsGroup the kubelet makes them root:fsGroup 0440,
      // which the broker accepts (src/config/private-file.ts); 0644 it would refuse.
      for (const volume of spec.volumes ?? []) {
        if (volume.secret) expect(volume.secret.defaultMode, `${owner}/${volume.name}`).toBe(0o400);
      }
    }
    // The chart carries no credentials: every Secret it mounts exists beforehand.
    expect(ofKind(rendered[name], 'Secret')).toHaveLength(0);
  });

  it('runs at least two instances, spread over nodes, behind a disruption budget', () => {
    const deployment = only(rendered[name], 'Deployment');
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    const labels = deployment.spec.template.metadata.labels;
    const anti = deployment.spec.template.spec.affinity.podAntiAffinity;
    const term =
      name === 'production'
        ? anti.requiredDuringSchedulingIgnoredDuringExecution[0]
        : anti.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    expect(term.topologyKey).toBe('kubernetes.io/hostname');
    expect(labels).toMatchObject(term.labelSelector.matchLabels);
    const budget = only(rendered[name], 'PodDisruptionBudget');
    expect(labels).toMatchObject(budget.spec.selector.matchLabels);
    expect(budget.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
    expect(labels).toMatchObject(only(rendered[name], 'Service').spec.selector);
  });

  it('probes /readyz and /healthz on the port the configuration listens on, routes the broker serves', async () => {
    const deployment = only(rendered[name], 'Deployment');
    const broker = deployment.spec.template.spec.containers.find(
      (c: K8sObject) => c.name === 'broker',
    );
    const { config } = brokerConfig(rendered[name]);
    const port = broker.ports[0];
    expect(port.containerPort).toBe(config.listen.port);
    expect(broker.readinessProbe.httpGet.path).toBe('/readyz');
    expect(broker.livenessProbe.httpGet.path).toBe('/healthz');
    const scheme = config.listen.tls === undefined ? 'HTTP' : 'HTTPS';
    const test = await buildTestApp(TEST_POLICY);
    try {
      for (const probe of [broker.readinessProbe, broker.livenessProbe, broker.startupProbe]) {
        expect(probe.httpGet.port).toBe(port.name);
        expect(probe.httpGet.scheme).toBe(scheme);
        const res = await test.app.request(probe.httpGet.path);
        expect(res.status, probe.httpGet.path).not.toBe(404);
      }
      expect((await test.app.request('/nope')).status).toBe(404);
    } finally {
      await test.close();
    }
  });

  it('renders a broker configuration that the broker accepts, every file it names mounted', () => {
    const { config } = brokerConfig(rendered[name]);
    // `zsb backup` reads the OpenBao credential, CA and audit key, not the listener's pair.
    const listener = [config.listen.tls?.certFile, config.listen.tls?.keyFile];
    const named = [
      config.openbao.auth.method === 'token' ? config.openbao.auth.tokenFile : undefined,
      config.openbao.auth.method === 'approle' ? config.openbao.auth.roleIdFile : undefined,
      config.openbao.auth.method === 'approle' ? config.openbao.auth.secretIdFile : undefined,
      config.openbao.tls?.caFile,
      config.audit?.hmacKeyFile,
      '/etc/zsb/config.yaml',
    ];
    for (const { owner, spec } of podSpecs(rendered[name])) {
      const main = spec.containers[0];
      const mounts = main.volumeMounts.map((m: K8sObject) => m.mountPath as string);
      const own =
        owner.endsWith('-backup') && config.backup
          ? [
              config.backup.verify.sealKeyFile,
              config.backup.verify.baoBinary,
              config.backup.directory,
            ]
          : listener;
      const needed = [...named, ...own].filter((file): file is string => file !== undefined);
      for (const file of needed) {
        expect(
          mounts.some((m: string) => file === m || file.startsWith(`${m}/`)),
          `${owner}: ${file}`,
        ).toBe(true);
      }
      expect(main.args).toContain('/etc/zsb/config.yaml');
    }
    if (name === 'default') {
      expect(config.policies).toBe('/app/policies');
      expect(config.openbao.auth).toEqual({
        method: 'token',
        tokenFile: '/etc/zsb/openbao-credential/token',
      });
    }
  });
});

describe('the production values', () => {
  it('mount the policies as a whole ConfigMap volume (never subPath) that the broker loads', async () => {
    const objects = rendered.production;
    const { config } = brokerConfig(objects);
    expect(config.policies).toBe('/etc/zsb/policies');
    expect(config.watchPolicies).toBe(true);
    const deployment = only(objects, 'Deployment');
    const mount = deployment.spec.template.spec.containers[0].volumeMounts.find(
      (m: K8sObject) => m.mountPath === '/etc/zsb/policies',
    );
    expect(mount.subPath).toBeUndefined();
    const volume = deployment.spec.template.spec.volumes.find(
      (v: K8sObject) => v.name === mount.name,
    );
    const map = ofKind(objects, 'ConfigMap').find((m) => m.metadata.name === volume.configMap.name);
    // Policy changes are reloaded in place, so they must not roll the pods.
    const annotations = deployment.spec.template.metadata.annotations as Record<string, string>;
    expect(Object.keys(annotations)).toEqual(['checksum/config']);
    const dir = path.join(work, 'policies');
    await run('mkdir', ['-p', dir]);
    for (const [file, text] of Object.entries(map?.data ?? {}))
      await writeFile(path.join(dir, file), text as string);
    const loaded = await loadPolicyDir(dir, {
      maxTtlSeconds: config.maxTtlSeconds,
      supportedKinds: ['kv'],
    });
    expect(loaded.ok).toBe(true);
  });

  it('run verified backups from a CronJob with the cluster bao, the brokers’ scheduler off', () => {
    const { config } = brokerConfig(rendered.production);
    expect(config.backup?.enabled).toBe(false);
    const cron = only(rendered.production, 'CronJob');
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    const spec = cron.spec.jobTemplate.spec.template.spec;
    expect(spec.containers[0].args).toEqual([
      'backup',
      '--due',
      '--config',
      '/etc/zsb/config.yaml',
    ]);
    expect(spec.initContainers[0].image).toBe('openbao/openbao:2.7.2');
    expect(spec.initContainers[0].command).toEqual([
      'cp',
      '/bin/bao',
      config.backup?.verify.baoBinary,
    ]);
  });

  it('let only the Zuul executors and Prometheus in, and out only to OpenBao, zuul-web and DNS', () => {
    const policies = ofKind(rendered.production, 'NetworkPolicy');
    const broker = policies.find(
      (p) => p.spec.podSelector.matchLabels['app.kubernetes.io/component'] === 'broker',
    );
    expect(broker?.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    const from = broker?.spec.ingress.flatMap((rule: K8sObject) => rule.from);
    expect(
      from.map(
        (peer: K8sObject) => peer.namespaceSelector.matchLabels['kubernetes.io/metadata.name'],
      ),
    ).toEqual(['zuul', 'monitoring']);
    const egressPorts = broker?.spec.egress.flatMap((rule: K8sObject) =>
      rule.ports.map((p: K8sObject) => p.port),
    );
    expect(egressPorts.sort()).toEqual([443, 53, 53, 8200, 9000].sort());
    const backup = policies.find(
      (p) => p.spec.podSelector.matchLabels['app.kubernetes.io/component'] === 'backup',
    );
    expect(backup?.spec.ingress).toEqual([]);
  });

  it('serve HTTPS from the TLS Secret and scrape it so', () => {
    const { config } = brokerConfig(rendered.production);
    expect(config.listen.tls?.keyFile).toBe('/etc/zsb/tls/tls.key');
    const monitor = only(rendered.production, 'ServiceMonitor');
    expect(monitor.spec.endpoints[0]).toMatchObject({
      port: 'https',
      scheme: 'https',
      path: '/metrics',
    });
    const rules = only(rendered.production, 'PrometheusRule').spec.groups[0].rules.map(
      (r: K8sObject) => r.alert,
    );
    expect(rules).toContain('ZsbAuditSinkFailing');
    expect(rules).toContain('ZsbBackupJobFailed');
  });
});

describe('Kubernetes auth at OpenBao', () => {
  it('projects a service account token for OpenBao alone and logs in with it', async () => {
    const objects = await template('kubernetes', [
      '--set',
      'openbao.auth.method=kubernetes',
      '--set',
      'openbao.auth.kubernetes.role=zsb',
    ]);
    const validated = await validate(files.kubernetes ?? '');
    expect(validated.code, validated.stdout).toBe(0);
    const { config } = brokerConfig(objects);
    expect(config.openbao.auth).toEqual({
      method: 'kubernetes',
      role: 'zsb',
      mount: 'kubernetes',
      jwtFile: '/var/run/secrets/zsb/openbao/token',
    });
    const pod = only(objects, 'Deployment').spec.template.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    const volume = pod.volumes.find((v: K8sObject) => v.projected);
    expect(volume.projected.sources).toEqual([
      { serviceAccountToken: { audience: 'openbao', expirationSeconds: 3600, path: 'token' } },
    ]);
    const mount = pod.containers[0].volumeMounts.find((m: K8sObject) => m.name === volume.name);
    expect(`${mount.mountPath}/token`).toBe(
      config.openbao.auth.method === 'kubernetes' ? config.openbao.auth.jwtFile : '',
    );
    expect(pod.volumes.some((v: K8sObject) => v.secret)).toBe(false);
  });
});

describe('values the chart refuses', () => {
  it.each([
    [
      ['--set', 'openbao.auth.existingSecret='],
      'openbao.auth.existingSecret (or tokenFile) is required',
    ],
    [
      ['--set', 'openbao.auth.method=ldap'],
      'openbao.auth.method must be token, approle or kubernetes',
    ],
    [['--set', 'tls.enabled=true'], 'tls.enabled needs tls.secretName'],
    [['--set', 'openbao.auth.method=kubernetes'], 'openbao.auth.kubernetes.role is required'],
    [['--set', 'backup.enabled=true'], 'backup.enabled needs backup.persistentVolumeClaim'],
    [['--set-string', 'policies.files.notes\\.txt=x'], '"notes.txt" is not a policy file name'],
  ])('%j', async (args, message) => {
    const result = await helm(['template', 'zsb', CHART, ...args]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(message);
  });
});
