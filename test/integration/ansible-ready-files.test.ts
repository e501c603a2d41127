/**
 * broker-fetch-secrets writes ready files (broker_files: name → path) with the real
 * ansible-playbook -vvv, through the example playbooks of zuul/playbooks/, against a
 * broker in-process and a real OpenBao: each file as the broker rendered it, mode 0600,
 * missing directories created 0700 and existing ones left alone, plain and wrapped, no
 * value in Ansible's output; broker-forget.yaml removes them; a secret without a ready
 * file fails the play with its name.
 */
import { chmod, mkdir, mkdtemp, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireAnsiblePlaybook, runPlaybook, tail, ZUUL_DIR } from '../support/ansible.js';
import { canaryValue } from '../support/canary.js';
import { type PolicyBroker, startPolicyBroker } from '../support/policy-broker.js';

const FETCH = path.join(ZUUL_DIR, 'playbooks', 'broker-fetch.yaml');
const FORGET = path.join(ZUUL_DIR, 'playbooks', 'broker-forget.yaml');
const PLAYBOOK_TIMEOUT = 180000;

const ROBOT = { username: 'robot$scs+image-build', password: canaryValue('ansible-robot') };
const NETRC = { username: 'ci-bot', password: canaryValue('ansible-netrc') };
const AUTH = Buffer.from(`${ROBOT.username}:${ROBOT.password}`).toString('base64');
// Jinja in a value: the role must write it as text, never template it.
const TOOL = { token: `{{ lookup('env', 'HOME') }}{% raw %}-${canaryValue('ansible-tool')}` };

const POLICY = `
secrets:
  registry-robot:
    kv: { mount: secret, path: "{prefix}/robot" }
    render: { format: docker-config.json, registry: registry.scs.community }
  git-netrc:
    kv: { mount: secret, path: "{prefix}/netrc", keys: [username, password] }
    render: { format: netrc, machine: git.example.org }
  tool-ini:
    kv: { mount: secret, path: "{prefix}/tool", keys: [token] }
    render: { format: template, template: "[tool]\\ntoken = {{ token }}\\n" }
  no-file:
    kv: { mount: secret, path: "{prefix}/netrc" }
grants:
  - name: ansible-ready-files
    match: { tenant: scs, pipeline: periodic-daily }
    allow: [registry-robot, git-netrc, tool-ini, no-file]
`;

let env: PolicyBroker;

beforeAll(async () => {
  env = await startPolicyBroker('ansible-files', POLICY, {
    robot: ROBOT,
    netrc: NETRC,
    tool: TOOL,
  });
}, 60000);

afterAll(async () => {
  await env?.close();
});

const modeOf = async (file: string) => (await stat(file)).mode & 0o777;

describe.each([
  { wrap: false, label: 'plain' },
  { wrap: true, label: 'wrapped' },
])('broker_files with ansible-playbook -vvv ($label delivery)', ({ wrap }) => {
  it(
    'writes each ready file 0600 at its path, leaks nothing, and broker-forget removes them',
    async () => {
      await requireAnsiblePlaybook();
      const workDir = await mkdtemp(path.join(env.dir, 'run-'));
      const home = path.join(workDir, 'home');
      await mkdir(home, { mode: 0o755 });
      await chmod(home, 0o755);
      const files = {
        'registry-robot': path.join(home, '.docker', 'config.json'),
        'git-netrc': path.join(home, '.netrc'),
        'tool-ini': path.join(home, '.config', 'tool', 'settings.ini'),
      };
      const vars = {
        openbao_id: env.issuer.mint(),
        broker_url: env.broker.url,
        broker_files: files,
        ...(wrap ? { broker_wrap: true, broker_openbao_url: env.baoAddress } : {}),
      };
      const fetched = await runPlaybook(FETCH, vars, workDir, PLAYBOOK_TIMEOUT);
      expect(fetched.code, tail(fetched)).toBe(0);

      // Byte for byte as the broker rendered it (Ansible neither re-serialises the JSON
      // nor templates the Jinja in a value).
      expect(await readFile(files['registry-robot'], 'utf8')).toBe(
        `${JSON.stringify({ auths: { 'registry.scs.community': { auth: AUTH } } }, null, 2)}\n`,
      );
      expect(await readFile(files['tool-ini'], 'utf8')).toBe(`[tool]\ntoken = ${TOOL.token}\n`);
      expect(await readFile(files['git-netrc'], 'utf8')).toBe(
        `machine git.example.org\nlogin ci-bot\npassword ${NETRC.password}\n`,
      );
      expect(await modeOf(files['registry-robot'])).toBe(0o600);
      expect(await modeOf(files['git-netrc'])).toBe(0o600);
      expect(await modeOf(files['tool-ini'])).toBe(0o600);
      expect(await modeOf(path.join(home, '.docker'))).toBe(0o700);
      expect(await modeOf(path.join(home, '.config'))).toBe(0o700);
      expect(await modeOf(path.join(home, '.config', 'tool'))).toBe(0o700);
      expect(await modeOf(home)).toBe(0o755);

      const output = `${fetched.stdout}\n${fetched.stderr}`;
      for (const [what, value] of Object.entries({
        'robot password': ROBOT.password,
        'docker auth': AUTH,
        'netrc password': NETRC.password,
        'tool token': TOOL.token,
        token: vars.openbao_id.split('.')[2] ?? '',
      })) {
        expect(value.length).toBeGreaterThan(8);
        expect(output.includes(value), `${what} appears in ansible-playbook's output`).toBe(false);
      }

      const forgot = await runPlaybook(FORGET, vars, workDir, PLAYBOOK_TIMEOUT);
      expect(forgot.code, tail(forgot)).toBe(0);
      await expect(stat(files['registry-robot'])).rejects.toThrow(/ENOENT/);
      await expect(stat(files['git-netrc'])).rejects.toThrow(/ENOENT/);
      await expect(stat(files['tool-ini'])).rejects.toThrow(/ENOENT/);
    },
    3 * PLAYBOOK_TIMEOUT,
  );
});

describe('broker_files for a secret without a ready file', () => {
  it(
    'fails the play naming the secret, and writes no file',
    async () => {
      await requireAnsiblePlaybook();
      const workDir = await mkdtemp(path.join(env.dir, 'run-'));
      const file = path.join(workDir, 'no-file.txt');
      const run = await runPlaybook(
        FETCH,
        {
          openbao_id: env.issuer.mint(),
          broker_url: env.broker.url,
          broker_files: { 'no-file': file },
        },
        workDir,
        PLAYBOOK_TIMEOUT,
      );
      expect(run.code, tail(run)).not.toBe(0);
      expect(run.stdout).toMatch(
        /broker_files names no-file, but the broker delivered no\s+ready file/,
      );
      await expect(stat(file)).rejects.toThrow(/ENOENT/);
      expect(`${run.stdout}${run.stderr}`.includes(NETRC.password)).toBe(false);
    },
    PLAYBOOK_TIMEOUT,
  );
});
