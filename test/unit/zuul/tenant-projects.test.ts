/**
 * zuul-web's project list against a loopback HTTP server that answers with Zuul's real
 * response shape, and with what a wrong URL gets from zuul-web (200 HTML), a redirect, an
 * unknown tenant and an answer too large.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fetchConfigProjects,
  fetchTenantProjects,
  tenantProjectsUrl,
} from '../../../src/zuul/tenant-projects.js';

/** As zuul-web 14.3 answers /api/tenant/e2e/projects. */
const E2E_PROJECTS = [
  {
    name: 'zuul-config',
    canonical_name: 'localhost/zuul-config',
    connection_name: 'local',
    type: 'config',
  },
  { name: 'demo', canonical_name: 'localhost/demo', connection_name: 'local', type: 'untrusted' },
  {
    name: 'org/lib',
    canonical_name: 'localhost/org/lib',
    connection_name: 'local',
    type: 'untrusted',
  },
];

let server: Server;
let base: string;
const seen: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.url ?? '');
    switch (req.url) {
      case '/api/tenant/e2e/projects':
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify(E2E_PROJECTS));
        return;
      case '/api/tenant/moved/projects':
        res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' }).end();
        return;
      case '/api/tenant/huge/projects':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`[${' '.repeat(5 * 1024 * 1024)}]`);
        return;
      case '/api/tenant/odd/projects':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"projects": []}');
        return;
      case '/api/tenant/nope/projects':
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end('{"error": "unknown tenant"}');
        return;
      default:
        // zuul-web's answer to any path it does not know: the dashboard.
        res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><html></html>');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  base = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe("zuul-web's tenant project list", () => {
  it('reads every project with its type, and the config projects by canonical name', async () => {
    expect(await fetchTenantProjects(base, 'e2e')).toEqual([
      {
        name: 'zuul-config',
        canonicalName: 'localhost/zuul-config',
        connectionName: 'local',
        type: 'config',
      },
      { name: 'demo', canonicalName: 'localhost/demo', connectionName: 'local', type: 'untrusted' },
      {
        name: 'org/lib',
        canonicalName: 'localhost/org/lib',
        connectionName: 'local',
        type: 'untrusted',
      },
    ]);
    expect(await fetchConfigProjects(`${base}/`, 'e2e')).toEqual(
      new Set(['localhost/zuul-config']),
    );
  });

  it('keeps the tenant one path segment', () => {
    expect(tenantProjectsUrl('https://zuul.example.org/', 'a/../b')).toBe(
      'https://zuul.example.org/api/tenant/a%2F..%2Fb/projects',
    );
  });

  it.each([
    [
      'a wrong root (the dashboard)',
      `/zuul`,
      'e2e',
      /not JSON \(text\/html\); is the URL zuul-web's root/,
    ],
    ['an unknown tenant', '', 'nope', /HTTP 404 \(unknown tenant\?\)/],
    ['a redirect', '', 'moved', /HTTP 302/],
    ['an answer too large', '', 'huge', /answer larger than 4194304 bytes/],
    ['another shape', '', 'odd', /not a Zuul project list/],
  ])('refuses %s with the URL named', async (_what, prefix, tenant, message) => {
    const error = await fetchTenantProjects(`${base}${prefix}`, tenant).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(String((error as Error).message)).toMatch(message);
    expect((error as Error).message).toContain(`${base}${prefix}/api/tenant/${tenant}/projects`);
  });

  it('gives up on a server that does not answer in time', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    try {
      await expect(
        fetchTenantProjects(`http://127.0.0.1:${address.port}`, 'e2e', { timeoutMs: 200 }),
      ).rejects.toThrow(/no answer in time/);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
