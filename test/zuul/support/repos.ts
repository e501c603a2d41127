/**
 * The git repositories the real Zuul loads (git driver, one directory of repositories):
 * the trusted config project `zuul-config` (pipelines, base job, the suite's jobs),
 * the untrusted project `kit` (the shipped zuul/ directory as it is, plus the deploy
 * script its example job runs), and two untrusted projects `proj-a` and `proj-b`, each
 * with its own token secret. Also the broker's policy file for all of them.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const TENANT = 'zsb';
export const AUDIENCE = 'https://secrets.example.org';
/** The canonical hostname Zuul gives projects of a git connection whose baseurl is a path. */
export const HOST = 'localhost';

export interface SuiteValues {
  readonly brokerUrl: string;
  /** zuul-web's root: playbooks read their own build's record there (build binding facts). */
  readonly webUrl: string;
  readonly openbaoUrl: string;
  /** Where the revoke job leaves the issued credential for the suite (trusted_rw_paths). */
  readonly outDir: string;
  /** sha256 (hex) of the value of each KV secret, as the jobs compare it. */
  readonly sha256: Readonly<Record<'granted' | 'projA' | 'dbPassword' | 'bound', string>>;
  /** Makes the granted job print its secret: proves that the canary scan catches a leak. */
  readonly plantCanary: boolean;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'zsb suite',
  GIT_AUTHOR_EMAIL: 'zsb-suite@example.org',
  GIT_COMMITTER_NAME: 'zsb suite',
  GIT_COMMITTER_EMAIL: 'zsb-suite@example.org',
  PATH: '/usr/local/bin:/usr/bin:/bin',
  HOME: '/nonexistent',
  GIT_CONFIG_NOSYSTEM: '1',
};

async function git(dir: string, ...args: string[]): Promise<void> {
  await run('git', args, { cwd: dir, env: GIT_ENV });
}

/** Commits `files` on `branch` of an existing repository (created from the current head if new). */
export async function commitOnBranch(
  repo: string,
  branch: string,
  files: Readonly<Record<string, string>>,
  message: string,
): Promise<void> {
  await git(repo, 'checkout', '-q', branch).catch(() => git(repo, 'checkout', '-q', '-b', branch));
  await commitFiles(repo, files, message);
}

/** Writes `files` into the repository and commits them (a new repository if needed). */
export async function commitFiles(
  repo: string,
  files: Readonly<Record<string, string>>,
  message: string,
  executable: readonly string[] = [],
): Promise<void> {
  await mkdir(repo, { recursive: true });
  await git(repo, 'init', '-q', '-b', 'master');
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(repo, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text, { mode: executable.includes(name) ? 0o755 : 0o644 });
  }
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', message);
}

/** The untrusted project `kit`: the project's shipped zuul/ directory, unchanged. */
export async function createKitRepo(repo: string, zuulDir: string, dbSha: string): Promise<void> {
  await mkdir(repo, { recursive: true });
  for (const part of ['zuul.d', 'playbooks', 'roles']) {
    await cp(path.join(zuulDir, part), path.join(repo, part), { recursive: true });
  }
  // The project's own deploy script, which the example job runs with its secrets: it
  // checks that they arrived (the password by its hash) and never prints them.
  const deploy = `#!/bin/sh
set -eu
test -s "$DEPLOY_KEY_FILE"
test -n "$DB_USER"
[ "$(printf %s "$DB_PASSWORD" | sha256sum | cut -d' ' -f1)" = "${dbSha}" ]
echo "status page deployed"
`;
  await commitFiles(repo, { 'deploy.sh': deploy }, 'kit: the shipped zuul/ directory', [
    'deploy.sh',
  ]);
}

export function tenantConfig(): string {
  return `- tenant:
    name: ${TENANT}
    source:
      local:
        config-projects:
          - zuul-config
        untrusted-projects:
          - kit
          - proj-a
          - proj-b
          - app
          - other
`;
}

/** The token secret every job of the suite uses (each project defines its own). */
function tokenSecret(name: string): string {
  return `- secret:
    name: ${name}
    oidc:
      ttl: 600
      claims:
        aud: ${AUDIENCE}
`;
}

/** A playbook that fetches e2e_secret with the kit's role and compares its hash. */
const FETCH_AND_COMPARE = `- name: Fetch a secret through the broker and compare its hash
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Fetch the secret with the build's Zuul token
      ansible.builtin.include_role:
        name: broker-fetch-secrets
      vars:
        broker_secrets: ["{{ e2e_secret }}"]
        broker_secrets_dir: "{{ zuul.executor.work_root }}/e2e-secrets"

    - name: Compare the fetched value's hash with the expected one
      ansible.builtin.assert:
        that:
          - (lookup('file', zuul.executor.work_root ~ '/e2e-secrets/' ~ e2e_secret ~ '.json') | from_json).value | hash('sha256') == expected_sha256
        quiet: true
      no_log: true

    - name: Leak the secret on purpose (only when the suite plants a canary)
      ansible.builtin.debug:
        msg: "{{ lookup('file', zuul.executor.work_root ~ '/e2e-secrets/' ~ e2e_secret ~ '.json') }}"
      when: zsb_plant_canary | default(false) | bool
`;

export function configRepoFiles(v: SuiteValues): Record<string, string> {
  const pipelines = `- pipeline:
    name: periodic
    description: "Timer-driven; post-review: true, so untrusted projects may use their own token secrets."
    manager: independent
    post-review: true
    trigger:
      timer:
        - time: '* * * * * */15'

- pipeline:
    name: post
    description: "After a branch moved (the git driver polls the repositories)."
    manager: supercedent
    post-review: true
    precedence: low
    trigger:
      local:
        - event: ref-updated
          ref: ^refs/heads/.*$

- pipeline:
    name: promote
    description: "Named by the shipped example; here triggered by promote-* tags only."
    manager: independent
    post-review: true
    trigger:
      local:
        - event: ref-updated
          ref: ^refs/tags/promote-.*$
`;
  const jobs = `- job:
    name: base
    parent: null
    description: "The tenant's base job: no nodes, every play runs on the executor."
    nodeset:
      nodes: []
    attempts: 1
    timeout: 300

- job:
    name: zsb-e2e
    abstract: true
    description: "Jobs of the suite: the broker's roles from the kit project, the broker on loopback."
    # A secret reaches only the playbooks of the job stanza that lists it (or, with
    # pass-to-parent, its parents'): each job below lists the token secret itself.
    roles:
      - zuul: kit
    vars:
      broker_url: ${v.brokerUrl}
      zuul_web_url: ${v.webUrl}
      zsb_plant_canary: ${v.plantCanary}

- job:
    name: zsb-granted
    parent: zsb-e2e
    secrets:
      - name: broker_token
        secret: broker-id
    run: playbooks/fetch-and-compare.yaml
    vars:
      e2e_secret: e2e-granted
      expected_sha256: ${v.sha256.granted}

- job:
    name: zsb-denied
    parent: zsb-e2e
    secrets:
      - name: broker_token
        secret: broker-id
    description: "Asks for a secret whose only grant pins another job: no grant covers it."
    run: playbooks/fetch-and-compare.yaml
    vars:
      e2e_secret: e2e-granted
      expected_sha256: ${v.sha256.granted}

- job:
    name: zsb-revoke
    parent: zsb-e2e
    secrets:
      - name: broker_token
        secret: broker-id
    description: "Gets an OpenBao token for the build; a cleanup playbook revokes the build."
    run: playbooks/token.yaml
    post-run:
      - name: playbooks/revoke.yaml
        cleanup: true
    vars:
      openbao_url: ${v.openbaoUrl}
      zsb_out_dir: ${v.outDir}

- job:
    name: zsb-bound
    parent: zsb-e2e
    description: "Run for app and other with the config project's one token secret; the grant pins buildProject and branch."
    secrets:
      - name: broker_token
        secret: broker-id
    run: playbooks/fetch-and-compare.yaml
    vars:
      e2e_secret: e2e-bound
      expected_sha256: ${v.sha256.bound}
`;
  const projects = `- project:
    periodic:
      jobs:
        - zsb-granted
        - zsb-denied
        - zsb-revoke

# Two projects without configuration of their own run the same job with the same token
# secret after every push (any branch): only the build binding tells them apart.
- project:
    name: app
    post:
      jobs:
        - zsb-bound

- project:
    name: other
    post:
      jobs:
        - zsb-bound

# The site's settings for the shipped example: where its broker and OpenBao are.
- project:
    name: kit
    post:
      jobs:
        - status-page-deploy:
            vars:
              broker_url: ${v.brokerUrl}
              broker_openbao_url: ${v.openbaoUrl}
`;
  // The record zuul-web holds for this build when the build's first playbook starts, and
  // during its cleanup playbook: facts the build binding relies on (ADR 0014).
  const record = (
    when: string,
  ) => `    - name: Leave zuul-web's record of this build (${when}) for the suite
      ansible.builtin.uri:
        url: "{{ zuul_web_url }}/api/tenant/{{ zuul.tenant }}/build/{{ zuul.build }}"
        status_code: [200, 404]
        return_content: true
      register: _zsb_record

    - name: Write it down
      ansible.builtin.copy:
        content: "{{ {'status': _zsb_record.status, 'at': now(utc=true).isoformat(), 'record': _zsb_record.json | default(none)} | to_json }}"
        dest: "{{ zsb_out_dir }}/{{ zuul.build }}-${when}.json"
        mode: "0600"
`;
  const token = `- name: Get an OpenBao token for this build through the broker
  hosts: localhost
  gather_facts: false
  tasks:
${record('first')}
    - name: Fetch the token secret
      ansible.builtin.include_role:
        name: broker-fetch-secrets
      vars:
        broker_secrets: [e2e-token]
        broker_secrets_dir: "{{ zuul.executor.work_root }}/e2e-secrets"

    - name: The token works at OpenBao while the build runs
      ansible.builtin.uri:
        url: "{{ openbao_url }}/v1/auth/token/lookup-self"
        headers:
          X-Vault-Token: "{{ (lookup('file', zuul.executor.work_root ~ '/e2e-secrets/e2e-token.json') | from_json).token }}"
        status_code: 200
      no_log: true

    - name: Leave the token for the suite, which checks it after the cleanup playbook
      ansible.builtin.copy:
        src: "{{ zuul.executor.work_root }}/e2e-secrets/e2e-token.json"
        dest: "{{ zsb_out_dir }}/{{ zuul.build }}-token.json"
        mode: "0600"
      no_log: true

    # The suite checks its claims and signing key, and scans every output for it.
    - name: Leave this playbook's Zuul ID token for the suite
      ansible.builtin.copy:
        content: "{{ broker_token }}"
        dest: "{{ zsb_out_dir }}/{{ zuul.build }}-run.jwt"
        mode: "0600"
      no_log: true
`;
  const revoke = `- name: Revoke the build's secrets (cleanup playbook)
  hosts: localhost
  gather_facts: false
  tasks:
${record('cleanup')}
    - name: Revoke at the broker
      ansible.builtin.include_role:
        name: broker-revoke
`;
  return {
    'zuul.d/pipelines.yaml': pipelines,
    'zuul.d/secrets.yaml': tokenSecret('broker-id'),
    'zuul.d/jobs.yaml': jobs,
    'zuul.d/projects.yaml': projects,
    'playbooks/fetch-and-compare.yaml': FETCH_AND_COMPARE,
    'playbooks/token.yaml': token,
    'playbooks/revoke.yaml': revoke,
  };
}

/** An untrusted project with its own token secret and a job asking for `secret`. */
export function projectRepoFiles(
  name: string,
  secret: string,
  expectedSha: string,
  v: SuiteValues,
): Record<string, string> {
  // Secret names are unique within a tenant: each project names its own token secret.
  const config = `${tokenSecret(`${name}-id`)}
- job:
    name: ${name}-fetch
    description: "Fetches ${secret} with ${name}'s own token secret."
    roles:
      - zuul: kit
    run: playbooks/fetch-and-compare.yaml
    secrets:
      - name: broker_token
        secret: ${name}-id
    vars:
      broker_url: ${v.brokerUrl}
      e2e_secret: ${secret}
      expected_sha256: ${expectedSha}

- project:
    periodic:
      jobs:
        - ${name}-fetch
`;
  return { '.zuul.yaml': config, 'playbooks/fetch-and-compare.yaml': FETCH_AND_COMPARE };
}

/** The broker's policies for the suite's jobs (the OpenBao paths under `prefix`). */
export function brokerPolicy(prefix: string, lookupPolicy: string): string {
  const cfg = `${HOST}/zuul-config`;
  return `secrets:
  e2e-granted:
    kv: { mount: secret, path: ${prefix}/granted }
  e2e-token:
    token: { policies: [${lookupPolicy}] }
  proj-a-secret:
    kv: { mount: secret, path: ${prefix}/proj-a }
  e2e-bound:
    kv: { mount: secret, path: ${prefix}/bound }
  project-deploy-key:
    kv: { mount: secret, path: ${prefix}/deploy-key }
  status-page-db:
    kv: { mount: secret, path: ${prefix}/status-page-db }
grants:
  - name: e2e-granted
    match:
      tenant: ${TENANT}
      project: ${cfg}
      secret: broker-id
      pipeline: periodic
      job: zsb-granted
      playbook: ${cfg}/playbooks/fetch-and-compare.yaml
    allow: [e2e-granted]
  - name: e2e-token
    match: { tenant: ${TENANT}, project: ${cfg}, secret: broker-id, pipeline: periodic, job: zsb-revoke }
    allow: [e2e-token]
    ttl: 10m
  - name: e2e-bound
    match:
      tenant: ${TENANT}
      project: ${cfg}
      secret: broker-id
      pipeline: post
      job: zsb-bound
      buildProject: ${HOST}/app
      branch: main
    allow: [e2e-bound]
  - name: proj-a-only
    match: { tenant: ${TENANT}, project: ${HOST}/proj-a, secret: proj-a-id, pipeline: periodic }
    allow: [proj-a-secret]
  - name: status-page
    match:
      tenant: ${TENANT}
      project: ${HOST}/kit
      secret: openbao-id
      pipeline: post
      job: status-page-deploy
    allow: [project-deploy-key, status-page-db]
`;
}
