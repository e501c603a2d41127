/**
 * The command provider end to end: a real docker-registry with htpasswd auth, its robot
 * accounts rotated by `zsb rotate` processes through test/credentials/commands/
 * htpasswd-robot.mjs (password on stdin, or in a 0600 file). The new password logs in
 * with `podman login` and the registry API, the old one is refused after promotion; a
 * SIGKILL at every step boundary leaves a working current password; a test command that
 * refuses aborts the run and rolls the target back.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROTATION_BOUNDARIES } from '../../src/rotation/protocol.js';
import { registerCanary } from '../support/canary.js';
import { runZsb } from '../support/process.js';
import { baoRequest, realOpenBao, uniquePrefix } from '../support/real-openbao.js';
import { type Registry, startRegistry } from '../support/registry.js';
import {
  killRotationAt,
  type RotationBroker,
  rotationBroker,
  rotationStatus,
} from '../support/rotation-setup.js';

const SCRIPT = path.resolve(import.meta.dirname, 'commands', 'htpasswd-robot.mjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `podman login` with the password on stdin, as an image-build job runs it. */
function podmanLogin(registry: Registry, authDir: string, username: string, password: string) {
  return new Promise<number>((resolve) => {
    const child = execFile(
      'podman',
      [
        'login',
        '--tls-verify=false',
        '--authfile',
        path.join(authDir, 'auth.json'),
        '--username',
        username,
        '--password-stdin',
        new URL(registry.url).host,
      ],
      { timeout: 20000 },
      (error) => resolve(error === null ? 0 : typeof error.code === 'number' ? error.code : 1),
    );
    child.stdin?.end(`${password}\n`);
  });
}

describe('command provider rotating a real registry robot', () => {
  const bao = realOpenBao();
  let registry: Registry;
  let broker: RotationBroker;
  let prefix: string;
  let authDir: string;
  const robots = { stdin: 'robot-images', file: 'robot-charts' } as const;
  const kvPath = (robot: string) => `${prefix}/registry/${robot}`;

  async function read(robot: string) {
    const entry = await bao.admin.kvRead('secret', kvPath(robot));
    if (entry === null) throw new Error(`no secret for ${robot}`);
    registerCanary(String(entry.data.password));
    return { data: { ...entry.data }, version: entry.version };
  }
  async function currentWorks(robot: string): Promise<boolean> {
    const { data } = await read(robot);
    return (await registry.login(String(data.username), String(data.password))) === 200;
  }

  beforeAll(async () => {
    prefix = uniquePrefix('cmdreg');
    const first = `initial-${prefix}-pw`;
    registry = await startRegistry(robots.stdin, first);
    console.info(`docker-registry: started in ${registry.startMs} ms`);
    // The second robot, and one the broken rotation must never lock out.
    for (const robot of [robots.file, 'robot-broken']) {
      await new Promise<void>((resolve, reject) => {
        const child = execFile('htpasswd', ['-B', '-i', registry.htpasswdFile, robot], (e) =>
          e ? reject(e) : resolve(),
        );
        child.stdin?.end(first);
      });
    }
    for (const robot of [robots.stdin, robots.file, 'robot-broken']) {
      await bao.admin.kvWrite('secret', kvPath(robot), {
        username: robot,
        password: first,
        registry: registry.url,
      });
    }
    authDir = await mkdtemp(path.join(tmpdir(), 'zsb-podman-'));
    // The file the broken rotation writes to: a valid htpasswd file the registry never reads.
    await new Promise<void>((resolve, reject) => {
      const child = execFile(
        'htpasswd',
        ['-B', '-i', '-c', path.join(authDir, 'not-the-registry-htpasswd'), 'robot-broken'],
        (e) => (e ? reject(e) : resolve()),
      );
      child.stdin?.end('unused-password');
    });
    const command = (input: string, htpasswd: string) =>
      [
        '    generate: { key: password, kind: password, length: 40 }',
        '    target:',
        '      command:',
        `        set: [${SCRIPT}, set]`,
        `        test: [${SCRIPT}, test]`,
        `        rollback: [${SCRIPT}, rollback]`,
        `        input: ${input}`,
        '        timeout: 20s',
        `        env: { HTPASSWD_FILE: ${htpasswd}, REGISTRY_URL: "${registry.url}" }`,
      ].join('\n');
    const policy = [
      'secrets:',
      `  images-robot: { kv: { mount: secret, path: ${kvPath(robots.stdin)} } }`,
      `  charts-robot: { kv: { mount: secret, path: ${kvPath(robots.file)} } }`,
      `  broken-robot: { kv: { mount: secret, path: ${kvPath('robot-broken')} } }`,
      'rotations:',
      '  - secret: images-robot',
      '    every: 30d',
      command('stdin', registry.htpasswdFile),
      '  - secret: charts-robot',
      '    every: 30d',
      command('file', registry.htpasswdFile),
      // Sets the password in a file the registry does not read: the test must refuse it.
      '  - secret: broken-robot',
      '    every: 30d',
      command('stdin', path.join(authDir, 'not-the-registry-htpasswd')),
      '',
    ].join('\n');
    broker = await rotationBroker(prefix, policy);
  }, 60000);

  afterAll(async () => {
    await registry?.stop();
    if (broker) await rm(broker.dir, { recursive: true, force: true });
    if (authDir) await rm(authDir, { recursive: true, force: true });
    await baoRequest(bao.address, 'DELETE', `secret/metadata/${prefix}`, {
      token: bao.rootToken,
    }).catch(() => undefined);
  });

  const rotate = (name: string) =>
    runZsb(['rotate', name, '--config', broker.configFile], { cwd: broker.dir });

  it.each<[string, string, string]>([
    ['images-robot', 'stdin', robots.stdin],
    ['charts-robot', 'a 0600 file', robots.file],
  ])(
    'rotates %s (input on %s): podman logs in with the new password, the old one is refused',
    async (name, _input, robot) => {
      const before = await read(robot);
      const started = Date.now();
      const result = await rotate(name);
      console.info(`command rotation of ${name} (zsb rotate): ${Date.now() - started} ms`);
      expect(result.stdout, result.stderr).toBe(
        `${name}: rotated (version ${before.version + 1})\n`,
      );
      expect(result.code).toBe(0);
      const after = await read(robot);
      expect(String(after.data.password)).toMatch(/^[A-Za-z0-9]{40}$/);
      expect(after.data.registry).toBe(registry.url);
      expect(await podmanLogin(registry, authDir, robot, String(after.data.password))).toBe(0);
      expect(await podmanLogin(registry, authDir, robot, String(before.data.password))).not.toBe(0);
      expect(await registry.login(robot, String(before.data.password))).toBe(401);
      expect(result.stdout + result.stderr).not.toContain(String(after.data.password));
    },
  );

  it.each(ROTATION_BOUNDARIES)(
    'SIGKILL at %s, then a restart: one rotation completes and the current password logs in',
    async (boundary) => {
      const before = await read(robots.stdin);
      await killRotationAt(broker, 'images-robot', boundary);
      await sleep(1200); // the dead holder's lock (1 s) expires
      const restart = await rotate('images-robot');
      expect(restart.code, restart.stdout + restart.stderr).toBe(0);
      const after = await read(robots.stdin);
      expect(after.version).toBe(before.version + (boundary === 'finished' ? 2 : 1));
      expect((await broker.state('images-robot'))?.run).toBeUndefined();
      expect(await currentWorks(robots.stdin)).toBe(true);
      expect(await registry.login(robots.stdin, String(before.data.password))).toBe(401);
    },
    60000,
  );

  it('a test command that refuses the value aborts the run; the current password keeps working', async () => {
    const before = await read('robot-broken');
    const result = await rotate('broken-robot');
    expect(result.stdout).toBe(
      'broken-robot: aborted: the test command refused the pending value (exit 1)\n',
    );
    expect(result.code).toBe(1);
    expect((await read('robot-broken')).version).toBe(before.version);
    expect(await currentWorks('robot-broken')).toBe(true);
    const entry = await rotationStatus(broker, 'broken-robot');
    expect(entry).toMatchObject({ lastOutcome: 'aborted', lastError: { step: 'test' } });
    expect(entry?.step).toBeUndefined();
  });
});
