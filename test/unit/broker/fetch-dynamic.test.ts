/** Dynamic issuance in the fetch use case, with fakes of our own interfaces. */
import { describe, expect, it } from 'vitest';
import { createBuildTokenCache } from '../../../src/broker/dynamic.js';
import { fetchSecrets } from '../../../src/broker/fetch.js';
import type { JobIdentity } from '../../../src/identity/types.js';
import { createLeaseLedger, issuerSegment } from '../../../src/leases/ledger.js';
import { OpenBaoError, type OpenBaoErrorKind } from '../../../src/openbao/errors.js';
import type { BuildToken, DynamicIssuer, Issued } from '../../../src/openbao/interface.js';
import { parsePolicyFiles } from '../../../src/policy/load.js';
import { FakeOpenBao } from '../../support/fake-openbao.js';

const POLICY = `
secrets:
  db: { database: { mount: database, role: ro } }
  cert: { pki: { mount: pki, role: ci, commonName: "{build}.ci.example.org" } }
grants:
  - name: g
    match: { tenant: scs }
    allow: [db, cert]
    ttl: 10m
`;

class FakeIssuer extends FakeOpenBao implements DynamicIssuer {
  readonly issued: string[] = [];
  readonly buildTokenTtls: number[] = [];
  readonly revokedLeases: string[] = [];
  failPki: OpenBaoErrorKind | undefined;
  failKvWrite = false;
  #n = 0;
  async createBuildToken(
    _role: string,
    _policies: readonly string[],
    ttlSeconds: number,
  ): Promise<BuildToken> {
    this.#n++;
    this.issued.push('build-token');
    this.buildTokenTtls.push(ttlSeconds);
    return { token: `build-token-${this.#n}`, accessor: `build-accessor-${this.#n}`, ttlSeconds };
  }
  async databaseCreds(): Promise<Issued> {
    this.issued.push('db');
    this.calls.push('databaseCreds');
    return {
      wrapped: false,
      data: { username: 'u', password: 'p' },
      lease: { id: `database/creds/ro/${this.#n}`, ttlSeconds: 3600, renewable: true },
    };
  }
  async pkiIssue(): Promise<Issued> {
    if (this.failPki) throw new OpenBaoError('pki issue', this.failPki, 0);
    this.issued.push('cert');
    return {
      wrapped: false,
      data: { certificate: 'c', serial_number: '01:02', expiration: 2_000_000_000 },
      lease: null,
    };
  }
  async childToken(): Promise<Issued> {
    throw new Error('not used');
  }
  async pkiRevoke(): Promise<void> {}
  async revokeLease(id: string): Promise<void> {
    this.revokedLeases.push(id);
  }
  async unwrap(): Promise<Issued> {
    throw new OpenBaoError('unwrap', 'invalid_request', 400);
  }
  override async kvWrite(mount: string, path: string, data: Readonly<Record<string, unknown>>) {
    if (this.failKvWrite) throw new OpenBaoError('kv write', 'unavailable', 0);
    return super.kvWrite(mount, path, data);
  }
}

const identity: JobIdentity = {
  issuer: 'https://zuul.example.org',
  tenant: 'scs',
  project: 'github.com/org/repo',
  secret: 'openbao-id',
  build: 'a'.repeat(32),
  job: 'j',
  pipeline: 'post',
  playbook: 'p',
  issuedAt: new Date(),
  expiresAt: new Date(Date.now() + 600_000),
};

function setup(policy = POLICY) {
  const loaded = parsePolicyFiles([{ name: 'p.yaml', text: policy }], { maxTtlSeconds: 3600 });
  if (!loaded.ok) throw new Error('policy');
  const bao = new FakeIssuer();
  const deps = {
    policies: () => loaded.set,
    openbao: bao,
    wrapTtlSeconds: 60,
    dynamic: {
      openbao: bao,
      ledger: createLeaseLedger(bao, { mount: 'secret', prefix: 'zsb' }),
      buildTokenRole: 'zsb-build',
      buildPolicy: 'zsb-build',
      cache: createBuildTokenCache(),
      now: Date.now,
    },
  };
  return { bao, deps };
}

describe('dynamic fetch', () => {
  it('records the build token before issuing and bounds the lease by the grant TTL', async () => {
    const { bao, deps } = setup();
    const result = await fetchSecrets(deps, identity, ['db'], false);
    expect(result.ok).toBe(true);
    const recorded = bao.calls.indexOf(
      `kvWrite secret/zsb/builds/by-issuer/${issuerSegment(identity.issuer)}/${identity.build}`,
    );
    expect(recorded).toBeGreaterThanOrEqual(0);
    expect(recorded).toBeLessThan(bao.calls.indexOf('databaseCreds'));
    expect(bao.issued).toEqual(['build-token', 'db']);
    const db = result.ok ? (result.value.secrets.db as { lease: { ttl: number } }) : undefined;
    expect(db?.lease.ttl).toBeLessThanOrEqual(600);
  });

  it('reuses the build token for a later request of the same build', async () => {
    const { bao, deps } = setup();
    await fetchSecrets(deps, identity, ['db'], false);
    await fetchSecrets(deps, identity, ['db'], false);
    expect(bao.issued.filter((i) => i === 'build-token')).toHaveLength(1);
  });

  it('undoes the leases and the fresh build token when a later issue fails', async () => {
    const { bao, deps } = setup();
    bao.failPki = 'timeout';
    const result = await fetchSecrets(deps, identity, ['db', 'cert'], false);
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.failure.code).toBe('upstream_timeout');
    expect(bao.revokedLeases).toEqual(['database/creds/ro/1']);
    expect(bao.revokedAccessors).toContain('build-accessor-1');
  });

  it('issues nothing when the ledger cannot record the build token, and revokes that token', async () => {
    const { bao, deps } = setup();
    bao.failKvWrite = true;
    const result = await fetchSecrets(deps, identity, ['db'], false);
    expect(result.ok ? '' : result.failure.code).toBe('unavailable');
    expect(bao.issued).toEqual(['build-token']);
    expect(bao.revokedAccessors).toEqual(['build-accessor-1']);
  });

  it('gives each grant TTL its own build token, so no lease outlives its grant', async () => {
    const { bao, deps } = setup(`
secrets:
  db: { database: { mount: database, role: ro } }
  cert: { pki: { mount: pki, role: ci, commonName: "{build}.ci.example.org" } }
grants:
  - name: long
    match: { tenant: scs }
    allow: [db]
    ttl: 10m
  - name: short
    match: { tenant: scs }
    allow: [cert]
    ttl: 2m
`);
    const result = await fetchSecrets(deps, identity, ['db', 'cert'], false);
    expect(result.ok).toBe(true);
    expect(bao.buildTokenTtls.sort((a, b) => a - b)).toEqual([120, 600]);
  });
});
