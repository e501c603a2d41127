/**
 * Runs the real `ansible-playbook` from the project's pinned virtualenv
 * (`scripts/install-ansible.sh`) against localhost, with the roles under `zuul/roles/`.
 * A missing install is an error, never a skip: the roles' tests must run.
 */
import { spawn } from 'node:child_process';
import { access, constants, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ROOT } from './process.js';

/**
 * ZSB_ANSIBLE_VENV (absolute, or from the project root) runs the roles' tests under another
 * ansible-core, e.g. one of Zuul's managed installs (`.venv-zuul/lib/zuul/ansible/11`, ansible-core 2.18) that executors use.
 */
const VENV = path.resolve(ROOT, process.env.ZSB_ANSIBLE_VENV || '.venv-ansible');
export const ANSIBLE_PLAYBOOK = path.join(VENV, 'bin', 'ansible-playbook');
export const ZUUL_DIR = path.join(ROOT, 'zuul');

/** Throws with the fix when the pinned ansible-playbook is not installed. */
export async function requireAnsiblePlaybook(): Promise<void> {
  try {
    await access(ANSIBLE_PLAYBOOK, constants.X_OK);
  } catch {
    throw new Error(
      `${ANSIBLE_PLAYBOOK} is missing: run \`bash scripts/install-ansible.sh\` to install the pinned ansible-core`,
    );
  }
}

export interface PlaybookRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `ansible-playbook -vvv` on localhost (connection local) with the variables written to a
 * 0600 file and passed as `-e @file`, never on the command line. `workDir` holds
 * Ansible's temporary files and is the child's working directory, so no ansible.cfg of
 * the caller's is picked up.
 */
export async function runPlaybook(
  playbook: string,
  vars: Record<string, unknown>,
  workDir: string,
  timeoutMs = 120000,
): Promise<PlaybookRun> {
  const tmp = path.join(workDir, 'ansible-tmp');
  await mkdir(tmp, { recursive: true, mode: 0o700 });
  const varsFile = path.join(
    workDir,
    `vars-${Date.now()}-${Math.random().toString(16).slice(2)}.json`,
  );
  await writeFile(varsFile, JSON.stringify(vars), { mode: 0o600 });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_FORCE_COLOR: '0',
    ANSIBLE_HOST_KEY_CHECKING: 'False',
    ANSIBLE_LOCAL_TEMP: path.join(tmp, 'local'),
    ANSIBLE_REMOTE_TEMP: path.join(tmp, 'remote'),
    ANSIBLE_ROLES_PATH: path.join(ZUUL_DIR, 'roles'),
    ANSIBLE_PYTHON_INTERPRETER: path.join(VENV, 'bin', 'python'),
    ANSIBLE_RETRY_FILES_ENABLED: 'False',
    // The uri module honours proxy variables; the broker and OpenBao are on loopback.
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  };
  delete env.ANSIBLE_CONFIG;
  return new Promise((resolve, reject) => {
    const child = spawn(
      ANSIBLE_PLAYBOOK,
      ['-vvv', '-i', 'localhost,', '-c', 'local', '-e', `@${varsFile}`, playbook],
      { cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The last lines of a run, for assertion messages (only where no secret can be in it). */
export function tail(run: PlaybookRun, chars = 4000): string {
  return `exit ${run.code}\n--- stdout ---\n${run.stdout.slice(-chars)}\n--- stderr ---\n${run.stderr.slice(-chars)}`;
}
