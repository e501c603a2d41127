/**
 * Ready files through a real broker and a real OpenBao: the fetch answer carries the
 * rendered file beside the data, a wrapped fetch carries it inside the wrapping, and data
 * the file cannot hold fails the whole request with a value-free 502.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canaryValue } from '../support/canary.js';
import { brokerCall } from '../support/http.js';
import { type PolicyBroker, startPolicyBroker } from '../support/policy-broker.js';
import { baoRequest } from '../support/real-openbao.js';

const ROBOT = { username: 'robot$scs+image-build', password: canaryValue('robot') };
const NETRC = { username: 'ci-bot', password: canaryValue('netrc'), comment: 'not in the file' };
const SPACED = { username: 'ci-bot', password: `${canaryValue('spaced')} second-word-q7` };

const POLICY = `
secrets:
  registry-robot:
    kv: { mount: secret, path: "{prefix}/robot", keys: [username, password] }
    render: { format: docker-config.json, registry: registry.scs.community }
  git-netrc:
    kv: { mount: secret, path: "{prefix}/netrc" }
    render: { format: netrc, machine: git.example.org }
  spaced-netrc:
    kv: { mount: secret, path: "{prefix}/spaced" }
    render: { format: netrc, machine: git.example.org }
  plain:
    kv: { mount: secret, path: "{prefix}/robot" }
grants:
  - name: ready-files
    match: { tenant: scs, project: github.com/SovereignCloudStack/standards }
    allow: [registry-robot, git-netrc, spaced-netrc, plain]
`;

const DOCKER_CONFIG = `${JSON.stringify(
  {
    auths: {
      'registry.scs.community': {
        auth: Buffer.from(`${ROBOT.username}:${ROBOT.password}`).toString('base64'),
      },
    },
  },
  null,
  2,
)}\n`;

let env: PolicyBroker;
const fetchAs = (body: unknown) =>
  brokerCall(env.broker.url, 'POST', '/v1/fetch', env.issuer.mint(), body);

beforeAll(async () => {
  env = await startPolicyBroker('ready-files', POLICY, {
    robot: ROBOT,
    netrc: NETRC,
    spaced: SPACED,
  });
});

afterAll(async () => {
  await env?.close();
});

describe('ready files in the fetch answer', () => {
  it('carries the rendered file beside the data, only for secrets that declare one', async () => {
    const res = await fetchAs({ secrets: ['registry-robot', 'plain'] });
    expect(res.status).toBe(200);
    const secrets = res.body.secrets as Record<string, Record<string, unknown>>;
    expect(secrets['registry-robot']).toEqual({
      data: ROBOT,
      version: 1,
      lease: null,
      expiresAt: null,
      file: { format: 'docker-config.json', content: DOCKER_CONFIG },
    });
    expect(secrets.plain).not.toHaveProperty('file');
  });

  it('puts the file inside the wrapping, and names its format outside', async () => {
    const res = await fetchAs({ secrets: ['git-netrc', 'plain'], wrap: true });
    expect(res.status).toBe(200);
    const secrets = res.body.secrets as Record<
      string,
      { wrapped: { token: string }; file?: unknown }
    >;
    const entry = secrets['git-netrc'];
    expect(entry?.file).toEqual({ format: 'netrc' });
    expect(JSON.stringify(entry)).not.toContain(NETRC.password);
    expect(secrets.plain).not.toHaveProperty('file');
    const unwrapped = await baoRequest(env.baoAddress, 'POST', 'sys/wrapping/unwrap', {
      token: entry?.wrapped.token ?? '',
    });
    expect(unwrapped.status).toBe(200);
    expect(unwrapped.body.data).toEqual({
      data: NETRC,
      file: {
        format: 'netrc',
        content: `machine git.example.org\nlogin ci-bot\npassword ${NETRC.password}\n`,
      },
    });
  });

  it('fails the whole request with a value-free 502 when the data does not fit the file', async () => {
    for (const wrap of [false, true]) {
      const res = await fetchAs({ secrets: ['registry-robot', 'spaced-netrc'], wrap });
      expect(res.status).toBe(502);
      expect(res.body.code).toBe('upstream_error');
      expect(res.body.detail).toBe(
        "secret 'spaced-netrc' cannot be rendered as netrc: field 'password' is empty or contains whitespace, a control character, a '\\' or a leading '\"', which .netrc cannot hold",
      );
      const text = JSON.stringify(res.body);
      expect(text).not.toContain(ROBOT.password);
      expect(text).not.toContain('second-word-q7');
    }
    expect(env.logs.text()).toContain('cannot be rendered as netrc');
  });
});
