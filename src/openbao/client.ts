/**
 * The only file that imports the OpenBao client library. node-vault is used purely as
 * transport: every call carries its token in its own header (never the library's shared
 * token, which its login helpers overwrite under concurrency), every path is built from
 * validated segments, and every failure becomes a typed OpenBaoError whose text holds no
 * upstream message, body or token.
 */
import http from 'node:http';
import https from 'node:https';
import nodeVault from 'node-vault';
import { kindForStatus, OpenBaoError } from './errors.js';
import type {
  DynamicIssuer,
  Issued,
  KvEntry,
  OpenBao,
  OpenBaoHealth,
  RotationTargets,
  WrappedResponse,
} from './interface.js';
import { apiPath, splitSegments } from './paths.js';

export interface OpenBaoClientOptions {
  /** One or more addresses; idempotent calls fail over in order. */
  readonly addresses: readonly string[];
  readonly timeoutMs: number;
  readonly maxConnections: number;
  readonly namespace?: string;
  /** The broker's current OpenBao token, asked for on every call. */
  readonly token: () => string;
}

export interface TokenCreateRequest {
  readonly policies: readonly string[];
  readonly ttlSeconds: number;
  readonly orphan?: boolean;
  readonly renewable?: boolean;
  readonly noDefaultPolicy?: boolean;
  readonly displayName?: string;
}

export interface CreatedToken {
  readonly token: string;
  readonly accessor: string;
  readonly ttlSeconds: number;
}

/** Calls used by the playground, the CLI and operators' tooling, not by job requests. */
export interface OpenBaoAdmin {
  putAclPolicy(name: string, hcl: string): Promise<void>;
  /** Writes a token role (`auth/token/roles/:name`). */
  putTokenRole(name: string, role: Readonly<Record<string, unknown>>): Promise<void>;
  createToken(request: TokenCreateRequest): Promise<CreatedToken>;
  appRoleLogin(mount: string, roleId: string, secretId: string): Promise<CreatedToken>;
  /** The remaining TTL (0 = never expires) and renewability of a token. */
  lookupSelf(token: string): Promise<{ ttlSeconds: number; renewable: boolean }>;
  /** Renews a token; returns its new TTL. */
  renewSelf(token: string): Promise<{ ttlSeconds: number; renewable: boolean }>;
}

interface RawCall {
  readonly operation: string;
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST';
  readonly path: string;
  readonly json?: unknown;
  readonly headers?: Record<string, string>;
  /** Only idempotent calls are repeated on another address. */
  readonly idempotent: boolean;
  /** Send no token (login calls). */
  readonly anonymous?: boolean;
  /** Send this token instead of the broker's own (calls made as a build token). */
  readonly token?: string;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorStrings(body: unknown): string[] {
  if (!isObject(body) || !Array.isArray(body.errors)) return [];
  return body.errors.filter((e): e is string => typeof e === 'string');
}

/** Turns whatever the transport threw into an OpenBaoError without keeping the original. */
function classify(operation: string, error: unknown): OpenBaoError {
  if (error instanceof OpenBaoError) return error;
  if (isObject(error)) {
    const response = error.response;
    if (isObject(response) && typeof response.statusCode === 'number') {
      return new OpenBaoError(
        operation,
        kindForStatus(response.statusCode, errorStrings(response.body)),
        response.statusCode,
      );
    }
    const code = typeof error.code === 'string' ? error.code : '';
    if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ERR_CANCELED') {
      return new OpenBaoError(operation, 'timeout', 0);
    }
    if (code !== '') return new OpenBaoError(operation, 'unavailable', 0);
  }
  return new OpenBaoError(operation, 'upstream', 0);
}

export function createOpenBaoClient(
  options: OpenBaoClientOptions,
): OpenBao & OpenBaoAdmin & DynamicIssuer & RotationTargets {
  if (options.addresses.length === 0) throw new Error('at least one OpenBao address is required');
  // Idle connections are kept up to the same bound, so bursts do not reopen them.
  const agentOptions = {
    keepAlive: true,
    maxSockets: options.maxConnections,
    maxFreeSockets: options.maxConnections,
  };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);
  const clients = options.addresses.map((address) => {
    const client = nodeVault({ endpoint: address, apiVersion: 'v1' });
    // node-vault falls back to VAULT_TOKEN / VAULT_NAMESPACE from the environment; the
    // broker's identity must come only from its configuration.
    client.token = '';
    Object.assign(client, { namespace: '' });
    return client;
  });
  let preferred = 0;

  async function call(raw: RawCall): Promise<unknown> {
    const headers: Record<string, string> = { ...raw.headers };
    if (!raw.anonymous) headers['X-Vault-Token'] = raw.token ?? options.token();
    if (options.namespace) headers['X-Vault-Namespace'] = options.namespace;
    const attempts = raw.idempotent ? clients.length : 1;
    let lastError: OpenBaoError | undefined;
    for (let i = 0; i < attempts; i++) {
      const index = (preferred + i) % clients.length;
      const client = clients[index];
      if (client === undefined) break;
      try {
        const body: unknown = await client.request({
          path: raw.path,
          method: raw.method,
          headers,
          timeout: options.timeoutMs,
          httpAgent,
          httpsAgent,
          ...(raw.json === undefined ? {} : { json: raw.json }),
        });
        preferred = index;
        return body;
      } catch (error) {
        lastError = classify(raw.operation, error);
        // Only a server we could not reach is worth trying elsewhere.
        if (lastError.kind !== 'unavailable' && lastError.kind !== 'timeout') throw lastError;
      }
    }
    throw lastError ?? new OpenBaoError(raw.operation, 'unavailable', 0);
  }

  function kvDataPath(mount: string, path: string): string {
    return apiPath(mount, 'data', path);
  }

  function parseWrap(operation: string, body: unknown): WrappedResponse {
    const info = isObject(body) ? body.wrap_info : undefined;
    if (!isObject(info) || typeof info.token !== 'string' || typeof info.accessor !== 'string') {
      throw new OpenBaoError(operation, 'upstream', 200);
    }
    return {
      token: info.token,
      accessor: info.accessor,
      ttlSeconds: typeof info.ttl === 'number' ? info.ttl : 0,
      creationTime:
        typeof info.creation_time === 'string' ? info.creation_time : new Date().toISOString(),
    };
  }

  function parseAuth(operation: string, body: unknown): CreatedToken {
    const auth = isObject(body) ? body.auth : undefined;
    if (
      !isObject(auth) ||
      typeof auth.client_token !== 'string' ||
      typeof auth.accessor !== 'string'
    ) {
      throw new OpenBaoError(operation, 'upstream', 200);
    }
    return {
      token: auth.client_token,
      accessor: auth.accessor,
      ttlSeconds: typeof auth.lease_duration === 'number' ? auth.lease_duration : 0,
    };
  }

  const wrapHeader = (wrapTtlSeconds: number | undefined): Record<string, string> =>
    wrapTtlSeconds === undefined ? {} : { 'X-Vault-Wrap-TTL': `${Math.trunc(wrapTtlSeconds)}s` };

  /** The data (or wrapping) and lease of an issuing call's answer. */
  function issuedFrom(operation: string, body: unknown, wrapped: boolean): Issued {
    if (wrapped) return { wrapped: true, wrap: parseWrap(operation, body) };
    if (!isObject(body)) throw new OpenBaoError(operation, 'upstream', 200);
    const data = isObject(body.data) ? body.data : undefined;
    const leaseId = typeof body.lease_id === 'string' ? body.lease_id : '';
    const lease =
      leaseId === ''
        ? null
        : {
            id: leaseId,
            ttlSeconds: typeof body.lease_duration === 'number' ? body.lease_duration : 0,
            renewable: body.renewable === true,
          };
    if (data !== undefined) return { wrapped: false, data, lease };
    // Token creation answers in `auth`, not `data`.
    const auth = parseAuth(operation, body);
    const policies =
      isObject(body.auth) && Array.isArray(body.auth.policies) ? body.auth.policies : [];
    return {
      wrapped: false,
      data: { token: auth.token, accessor: auth.accessor, policies },
      lease: null,
    };
  }

  return {
    async createBuildToken(role, policies, ttlSeconds) {
      const body = await call({
        operation: 'build token create',
        method: 'POST',
        path: apiPath('auth', 'token', 'create', role),
        json: { policies, ttl: `${Math.trunc(ttlSeconds)}s`, renewable: false },
        idempotent: false,
      });
      const created = parseAuth('build token create', body);
      return { token: created.token, accessor: created.accessor, ttlSeconds: created.ttlSeconds };
    },

    async databaseCreds(buildToken, mount, role, wrapTtlSeconds) {
      const body = await call({
        operation: 'database creds',
        method: 'GET',
        path: apiPath(mount, 'creds', role),
        headers: wrapHeader(wrapTtlSeconds),
        token: buildToken,
        idempotent: false,
      });
      return issuedFrom('database creds', body, wrapTtlSeconds !== undefined);
    },

    async pkiIssue(buildToken, mount, role, commonName, ttlSeconds, wrapTtlSeconds) {
      const body = await call({
        operation: 'pki issue',
        method: 'POST',
        path: apiPath(mount, 'issue', role),
        json: { common_name: commonName, ttl: `${Math.trunc(ttlSeconds)}s` },
        headers: wrapHeader(wrapTtlSeconds),
        token: buildToken,
        idempotent: false,
      });
      return issuedFrom('pki issue', body, wrapTtlSeconds !== undefined);
    },

    async childToken(buildToken, policies, ttlSeconds, wrapTtlSeconds) {
      const body = await call({
        operation: 'token create',
        method: 'POST',
        path: '/auth/token/create',
        json: {
          policies,
          ttl: `${Math.trunc(ttlSeconds)}s`,
          no_default_policy: false,
          renewable: false,
        },
        headers: wrapHeader(wrapTtlSeconds),
        token: buildToken,
        idempotent: false,
      });
      return issuedFrom('token create', body, wrapTtlSeconds !== undefined);
    },

    async pkiRevoke(mount, serialNumber) {
      await call({
        operation: 'pki revoke',
        method: 'POST',
        path: apiPath(mount, 'revoke'),
        json: { serial_number: serialNumber },
        idempotent: true,
      });
    },

    async revokeLease(leaseId) {
      await call({
        operation: 'lease revoke',
        method: 'POST',
        path: '/sys/leases/revoke',
        json: { lease_id: leaseId },
        idempotent: true,
      });
    },

    async kvRead(mount, path, readOptions): Promise<KvEntry | null> {
      const query =
        readOptions?.version === undefined ? '' : `?version=${Math.trunc(readOptions.version)}`;
      let body: unknown;
      try {
        body = await call({
          operation: 'kv read',
          method: 'GET',
          path: kvDataPath(mount, path) + query,
          idempotent: true,
        });
      } catch (error) {
        if (error instanceof OpenBaoError && error.kind === 'not_found') return null;
        throw error;
      }
      const outer = isObject(body) ? body.data : undefined;
      // A deleted or destroyed version answers with data: null; treat it as absent.
      if (!isObject(outer) || outer.data === null) return null;
      const data = outer.data;
      const metadata = outer.metadata;
      if (!isObject(data) || !isObject(metadata) || typeof metadata.version !== 'number') {
        throw new OpenBaoError('kv read', 'upstream', 200);
      }
      return { data, version: metadata.version };
    },

    async kvReadWrapped(mount, path, wrapTtlSeconds) {
      const body = await call({
        operation: 'kv read (wrapped)',
        method: 'GET',
        path: kvDataPath(mount, path),
        headers: { 'X-Vault-Wrap-TTL': `${Math.trunc(wrapTtlSeconds)}s` },
        // Each call creates a wrapping token: never repeated.
        idempotent: false,
      });
      return parseWrap('kv read (wrapped)', body);
    },

    async wrapData(data, wrapTtlSeconds) {
      const body = await call({
        operation: 'wrap',
        method: 'POST',
        path: '/sys/wrapping/wrap',
        json: data,
        headers: wrapHeader(wrapTtlSeconds),
        idempotent: false,
      });
      return parseWrap('wrap', body);
    },

    async kvWrite(mount, path, data, writeOptions) {
      const body = await call({
        operation: 'kv write',
        method: 'POST',
        path: kvDataPath(mount, path),
        json:
          writeOptions?.cas === undefined ? { data } : { options: { cas: writeOptions.cas }, data },
        idempotent: false,
      });
      const outer = isObject(body) ? body.data : undefined;
      if (!isObject(outer) || typeof outer.version !== 'number') {
        throw new OpenBaoError('kv write', 'upstream', 200);
      }
      return { version: outer.version };
    },

    async revokeAccessor(accessor) {
      await call({
        operation: 'token revoke-accessor',
        method: 'POST',
        path: '/auth/token/revoke-accessor',
        json: { accessor },
        idempotent: true,
      });
    },

    async health(): Promise<OpenBaoHealth> {
      let body: unknown;
      try {
        // node-vault resolves sys/health for every status, so the body tells the state.
        body = await call({
          operation: 'health',
          method: 'GET',
          path: '/sys/health',
          idempotent: true,
          anonymous: true,
        });
      } catch (error) {
        const kind = error instanceof OpenBaoError ? error.kind : 'upstream';
        return { status: 'unreachable', detail: `OpenBao not reachable (${kind})` };
      }
      if (!isObject(body)) return { status: 'unreachable', detail: 'unexpected health answer' };
      const version = typeof body.version === 'string' ? body.version : '';
      if (body.initialized === false) return { status: 'uninitialized', version };
      if (body.sealed === true) return { status: 'sealed', version };
      if (body.standby === true) return { status: 'standby', version };
      return { status: 'ok', version };
    },

    async putAclPolicy(name, hcl) {
      splitSegments(name);
      await call({
        operation: 'policy write',
        method: 'PUT',
        path: apiPath('sys', 'policies', 'acl', name),
        json: { policy: hcl },
        idempotent: true,
      });
    },

    async putTokenRole(name, role) {
      await call({
        operation: 'token role write',
        method: 'POST',
        path: apiPath('auth', 'token', 'roles', name),
        json: role,
        idempotent: true,
      });
    },

    async createToken(request) {
      const body = await call({
        operation: 'token create',
        method: 'POST',
        path: request.orphan ? '/auth/token/create-orphan' : '/auth/token/create',
        json: {
          policies: request.policies,
          ttl: `${request.ttlSeconds}s`,
          renewable: request.renewable ?? true,
          no_default_policy: request.noDefaultPolicy ?? false,
          ...(request.displayName ? { display_name: request.displayName } : {}),
        },
        idempotent: false,
      });
      return parseAuth('token create', body);
    },

    async lookupSelf(token) {
      const body = await call({
        operation: 'token lookup-self',
        method: 'GET',
        path: '/auth/token/lookup-self',
        token,
        idempotent: true,
      });
      const data = isObject(body) && isObject(body.data) ? body.data : {};
      return {
        ttlSeconds: typeof data.ttl === 'number' ? data.ttl : 0,
        renewable: data.renewable === true,
      };
    },

    async renewSelf(token) {
      const body = await call({
        operation: 'token renew-self',
        method: 'POST',
        path: '/auth/token/renew-self',
        json: {},
        token,
        idempotent: false,
      });
      const auth = isObject(body) && isObject(body.auth) ? body.auth : {};
      return {
        ttlSeconds: typeof auth.lease_duration === 'number' ? auth.lease_duration : 0,
        renewable: auth.renewable === true,
      };
    },

    async databaseRotateRole(mount, role) {
      await call({
        operation: 'database rotate-role',
        method: 'POST',
        path: apiPath(mount, 'rotate-role', role),
        json: {},
        idempotent: false,
      });
    },

    async databaseStaticCreds(mount, role) {
      const body = await call({
        operation: 'database static-creds',
        method: 'GET',
        path: apiPath(mount, 'static-creds', role),
        idempotent: true,
      });
      const data = isObject(body) && isObject(body.data) ? body.data : {};
      if (typeof data.username !== 'string' || typeof data.password !== 'string') {
        throw new OpenBaoError('database static-creds', 'upstream', 200);
      }
      return {
        username: data.username,
        password: data.password,
        lastRotation: typeof data.last_vault_rotation === 'string' ? data.last_vault_rotation : '',
      };
    },

    async appRoleAddSecretId(mount, role, secretId) {
      const body = await call({
        operation: 'approle custom-secret-id',
        method: 'POST',
        path: apiPath('auth', mount, 'role', role, 'custom-secret-id'),
        json: { secret_id: secretId },
        idempotent: false,
      });
      const data = isObject(body) && isObject(body.data) ? body.data : {};
      return {
        accessor: typeof data.secret_id_accessor === 'string' ? data.secret_id_accessor : '',
      };
    },

    async appRoleHasSecretId(mount, role, secretId) {
      let body: unknown;
      try {
        body = await call({
          operation: 'approle secret-id lookup',
          method: 'POST',
          path: apiPath('auth', mount, 'role', role, 'secret-id', 'lookup'),
          json: { secret_id: secretId },
          idempotent: true,
        });
      } catch (error) {
        if (error instanceof OpenBaoError && error.kind === 'not_found') return false;
        throw error;
      }
      // An unknown secret-id answers 204 (no body) or 404, depending on the version.
      return isObject(body) && isObject(body.data);
    },

    async appRoleDestroySecretId(mount, role, secretId) {
      await call({
        operation: 'approle secret-id destroy',
        method: 'POST',
        path: apiPath('auth', mount, 'role', role, 'secret-id', 'destroy'),
        json: { secret_id: secretId },
        idempotent: true,
      });
    },

    async appRoleLogin(mount, roleId, secretId) {
      const body = await call({
        operation: 'approle login',
        method: 'POST',
        path: apiPath('auth', mount, 'login'),
        json: { role_id: roleId, secret_id: secretId },
        idempotent: false,
        anonymous: true,
      });
      return parseAuth('approle login', body);
    },
  };
}
