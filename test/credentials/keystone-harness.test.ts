/**
 * The Keystone test harness (test/support/keystone.ts) against itself: a real Keystone
 * starts, issues tokens only for the right password, and the robot-account helper makes
 * a user that can log in to its project.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminToken,
  createProjectUser,
  type Keystone,
  passwordToken,
  startKeystone,
} from '../support/keystone.js';

describe('Keystone test harness', () => {
  let keystone: Keystone;
  beforeAll(async () => {
    keystone = await startKeystone();
    // Measured on every run; the suite's notes quote these (docs/rotation.md).
    console.info(
      `keystone ${keystone.version}: set-up ${keystone.timings.setupMs} ms, start ${keystone.timings.startMs} ms`,
    );
  }, 120000);
  afterAll(async () => {
    await keystone?.stop();
  });

  it('serves the v3 identity API on a loopback port', async () => {
    expect(keystone.authUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v3$/);
    expect(keystone.version).toBe('v3.14');
    const response = await fetch(keystone.authUrl);
    expect(response.status).toBe(200);
  });

  it('issues a token to the admin and refuses a wrong password', async () => {
    const token = await adminToken(keystone);
    expect(token.length).toBeGreaterThan(100);
    await expect(
      passwordToken(keystone.authUrl, { ...keystone.admin, password: 'certainly-wrong-password' }),
    ).rejects.toThrow(/refused the password login of admin: 401/);
  });

  it('creates a project user that logs in to its own project only', async () => {
    const user = await createProjectUser(keystone, { user: 'ci-robot', project: 'ci-project' });
    const token = await passwordToken(keystone.authUrl, {
      username: user.name,
      password: user.password,
      projectName: user.projectName,
    });
    const response = await fetch(`${keystone.authUrl}/auth/tokens`, {
      headers: { 'x-auth-token': token, 'x-subject-token': token },
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      token: { project: { id: string }; roles: Array<{ name: string }> };
    };
    expect(body.token.project.id).toBe(user.projectId);
    expect(body.token.roles.map((r) => r.name)).toContain('member');
    await expect(
      passwordToken(keystone.authUrl, {
        username: user.name,
        password: user.password,
        projectName: 'admin',
      }),
    ).rejects.toThrow(/: 401/);
  });
});
