/**
 * The broker's OpenBao client, on one undici connection pool per node (transport.ts; ADR
 * 0019 replaced node-vault and node:http, ADR 0001/0007/0008 say which rules carried over).
 * Every call carries its token in its own header (no token is ever client state), every
 * path is built from validated segments, and every failure becomes a typed OpenBaoError
 * whose text holds no upstream message, body or token.
 */
import {
  type ClusterRouter,
  type ClusterView,
  createClusterRouter,
  isNoActiveNode,
  type NodeProbe,
} from './cluster.js';
import { createClusterCaller } from './cluster-client.js';
import { isTransient, kindForStatus, OpenBaoError, type OpenBaoErrorKind } from './errors.js';
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
import { createNodeTransport, type ExchangeAnswer, TOO_LARGE_CODE } from './transport.js';

export interface OpenBaoClientOptions {
  /**
   * One or more addresses. One: every call goes there. Several (the nodes of a raft
   * cluster): every call goes to the active node, and reads are fresh (src/openbao/cluster.ts,
   * ADR 0012).
   */
  readonly addresses: readonly string[];
  readonly timeoutMs: number;
  readonly maxConnections: number;
  readonly namespace?: string;
  /** TLS toward OpenBao: a private CA, and a client certificate and key (PEM). */
  readonly tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
  /** The broker's current OpenBao token, asked for on every call. */
  readonly token: () => string;
  /**
   * Attempts of one idempotent call, the first included (default 3, at most 10). Calls that are
   * not idempotent are never repeated. See `call()` for when a repeat happens.
   */
  readonly maxAttempts?: number;
  /** Base of the full-jitter backoff between attempts (default 50 ms; each wait ≤ 400 ms). */
  readonly retryBaseDelayMs?: number;
  /** Told once per call, after its last attempt (metrics). Gets no path, token or body. */
  readonly observe?: (observation: OpenBaoCallObservation) => void;
  /**
   * Largest answer body read from OpenBao; a larger one fails as `upstream` (the head is
   * bounded by Node's own 16 KiB header limit).
   */
  readonly maxResponseBytes?: number;
}

/** What a metrics hook learns about one call: closed sets only. */
export interface OpenBaoCallObservation {
  /** A fixed operation name of this file, e.g. `kv read`. */
  readonly operation: string;
  readonly outcome: 'ok' | OpenBaoErrorKind;
  readonly seconds: number;
  /** Requests sent, across attempts and addresses. */
  readonly attempts: number;
}

const DEFAULT_MAX_ATTEMPTS = 3;
const DEFAULT_RETRY_BASE_DELAY_MS = 50;
const MAX_RETRY_DELAY_MS = 400;
/** Built KV paths kept (client.ts `kvDataPath`): far more than the secrets of a policy set. */
const KV_PATH_MEMO = 4096;
/** A KV v2 entry is at most about 1 MiB in OpenBao's raft storage; its JSON answer fits well. */
const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

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
  /**
   * Whether a token role exists, as the broker's token sees it: `forbidden` when its ACL
   * does not allow reading `auth/token/roles/:name`, `unavailable` on any other failure.
   */
  tokenRoleStatus(name: string): Promise<'present' | 'missing' | 'forbidden' | 'unavailable'>;
  createToken(request: TokenCreateRequest): Promise<CreatedToken>;
  appRoleLogin(mount: string, roleId: string, secretId: string): Promise<CreatedToken>;
  /** Logs in with a JWT (a Kubernetes service account token) at `auth/{mount}/login`. */
  jwtLogin(mount: string, role: string, jwt: string): Promise<CreatedToken>;
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
  /**
   * Every status is an answer (`sys/health` tells a node's state by its status); otherwise
   * only 200 and 204 are, and any other status fails the call.
   */
  readonly anyStatus?: boolean;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorStrings(body: unknown): string[] {
  if (!isObject(body) || !Array.isArray(body.errors)) return [];
  return body.errors.filter((e): e is string => typeof e === 'string');
}

/**
 * An answer whose status fails the call (anything but 200 or 204, redirects included). It
 * lives only between the exchange and `classify`, which keeps the status and drops the body.
 */
class FailedStatus {
  constructor(readonly answer: ExchangeAnswer) {}
}

/** The answer's body when its status is an answer to the call; else throws FailedStatus. */
function accepted(answer: ExchangeAnswer, anyStatus: boolean | undefined): unknown {
  if (answer.status === 200 || answer.status === 204 || anyStatus === true) return answer.body;
  throw new FailedStatus(answer);
}

/**
 * Turns whatever the transport threw into an OpenBaoError without keeping the original.
 * In a cluster, a redirect or "active cluster node not found" means the node we asked has
 * no active node to forward to: `unavailable`, and the router looks again.
 */
function classify(operation: string, error: unknown, inCluster = false): OpenBaoError {
  if (error instanceof OpenBaoError) return error;
  if (error instanceof FailedStatus) {
    const { status, body } = error.answer;
    const errors = errorStrings(body);
    if (inCluster && isNoActiveNode(status, errors)) {
      return new OpenBaoError(operation, 'unavailable', status);
    }
    return new OpenBaoError(operation, kindForStatus(status, errors), status);
  }
  if (isObject(error)) {
    const code = typeof error.code === 'string' ? error.code : '';
    if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ERR_CANCELED') {
      return new OpenBaoError(operation, 'timeout', 0);
    }
    if (code === TOO_LARGE_CODE) return new OpenBaoError(operation, 'upstream', 0);
    if (code !== '') return new OpenBaoError(operation, 'unavailable', 0);
  }
  return new OpenBaoError(operation, 'upstream', 0);
}

/** Probes and calls only a cluster-aware client has. */
export interface OpenBaoClusterProbe {
  /** Probes every configured node now (readiness, metrics); undefined with one address. */
  clusterView(): Promise<ClusterView | undefined>;
  /** The last probe's result, without probing. */
  lastClusterView(): ClusterView | undefined;
}

export function createOpenBaoClient(
  options: OpenBaoClientOptions,
): OpenBao & OpenBaoAdmin & DynamicIssuer & RotationTargets & OpenBaoClusterProbe {
  if (options.addresses.length === 0) throw new Error('at least one OpenBao address is required');
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  // One connection pool per configured node: it connects only to that node's origin, so
  // the token can reach no other place (ADR 0007, 0019).
  const nodes = options.addresses.map(
    (address) =>
      createNodeTransport({
        address,
        maxResponseBytes,
        maxConnections: options.maxConnections,
        ...(options.tls ? { tls: options.tls } : {}),
      }).exchange,
  );
  const probeTimeoutMs = Math.min(1000, options.timeoutMs);
  /** Anonymous status probes of one node, on its own pool: every status is an answer. */
  const probe: NodeProbe = async (index, path) => {
    const node = nodes[index];
    if (node === undefined) return { status: 0, body: undefined };
    const headers: Record<string, string> = {};
    if (options.namespace) headers['X-Vault-Namespace'] = options.namespace;
    try {
      return await node({ path, method: 'GET', headers, timeoutMs: probeTimeoutMs });
    } catch {
      return { status: 0, body: undefined };
    }
  };
  const maxAttempts = Math.min(
    10,
    Math.max(1, Math.trunc(options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS)),
  );
  const retryBaseDelayMs = Math.max(0, options.retryBaseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS);
  const router: ClusterRouter | undefined =
    nodes.length > 1 ? createClusterRouter(options.addresses, probe) : undefined;
  const cluster =
    router === undefined
      ? undefined
      : createClusterCaller(router, {
          send: async (index, request, anyStatus) => {
            const node = nodes[index];
            if (node === undefined) throw new OpenBaoError('request', 'unavailable', 0);
            return accepted(await node(request), anyStatus);
          },
          classify: (operation, error) => classify(operation, error, true),
          timeoutMs: options.timeoutMs,
          maxAttempts,
          retryBaseDelayMs,
          maxRetryDelayMs: MAX_RETRY_DELAY_MS,
          ...(options.observe ? { observe: options.observe } : {}),
        });

  /**
   * One call, with bounded retries for idempotent calls only. A call that creates something
   * (a wrapping token, a lease, a token, a KV version) is sent exactly once: repeating it
   * after a lost answer would create a second one that nobody revokes.
   *
   * With several addresses the cluster caller routes it (cluster-client.ts). With one, an
   * idempotent call that failed with an error another moment could cure (unreachable, reset,
   * 502/503/504, timeout) starts another round after a full-jitter backoff. A new round
   * starts only while the time spent is under `timeoutMs`, so retries turn fast failures into
   * successes but never multiply the wait of a job: after a timeout there is no further round.
   */
  async function call(raw: RawCall): Promise<unknown> {
    const headers: Record<string, string> = { ...raw.headers };
    if (!raw.anonymous) headers['X-Vault-Token'] = raw.token ?? options.token();
    if (options.namespace) headers['X-Vault-Namespace'] = options.namespace;
    if (cluster !== undefined) return cluster.call(raw, headers);
    const rounds = raw.idempotent ? maxAttempts : 1;
    // The only address: with several, `cluster` above took the call.
    const node = nodes[0];
    const started = performance.now();
    let sent = 0;
    let lastError: OpenBaoError | undefined;
    const finish = (outcome: 'ok' | OpenBaoErrorKind): void => {
      options.observe?.({
        operation: raw.operation,
        outcome,
        seconds: (performance.now() - started) / 1000,
        attempts: sent,
      });
    };
    for (let round = 0; round < rounds; round++) {
      if (round > 0) {
        const ceiling = Math.min(MAX_RETRY_DELAY_MS, retryBaseDelayMs * 2 ** (round - 1));
        const delay = Math.random() * ceiling;
        if (performance.now() - started + delay >= options.timeoutMs) break;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
      if (node === undefined) break;
      sent += 1;
      let body: unknown;
      try {
        body = accepted(
          await node({
            path: raw.path,
            method: raw.method,
            headers,
            timeoutMs: options.timeoutMs,
            json: raw.json,
          }),
          raw.anyStatus,
        );
      } catch (error) {
        lastError = classify(raw.operation, error);
        // Only a server we could not reach (or that could not answer now) is worth asking again.
        if (!isTransient(lastError)) {
          finish(lastError.kind);
          throw lastError;
        }
        continue;
      }
      // OpenBao answers JSON or nothing (204); anything else is not OpenBao's answer.
      if (body !== undefined && body !== '' && !isObject(body)) {
        finish('upstream');
        throw new OpenBaoError(raw.operation, 'upstream', 200);
      }
      finish('ok');
      return body;
    }
    const failure = lastError ?? new OpenBaoError(raw.operation, 'unavailable', 0);
    finish(failure.kind);
    throw failure;
  }

  /**
   * KV v2 data paths already built, since every fetch builds one: at most KV_PATH_MEMO
   * entries, then it starts again. Only valid inputs are kept (apiPath throws on anything
   * else, newlines included), and a kept key holds exactly one newline, so an input that is
   * not valid never finds a kept path.
   */
  const kvPaths = new Map<string, string>();
  function kvDataPath(mount: string, path: string): string {
    const key = `${mount}\n${path}`;
    const known = kvPaths.get(key);
    if (known !== undefined) return known;
    const built = apiPath(mount, 'data', path);
    if (kvPaths.size >= KV_PATH_MEMO) kvPaths.clear();
    kvPaths.set(key, built);
    return built;
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

    async unwrap(wrapToken) {
      const body = await call({
        operation: 'unwrap',
        method: 'POST',
        path: '/sys/wrapping/unwrap',
        token: wrapToken,
        // Single use: a second attempt could only fail.
        idempotent: false,
      });
      return issuedFrom('unwrap', body, false);
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

    async clusterView() {
      return router?.view();
    },

    lastClusterView() {
      return router?.last();
    },

    async health(): Promise<OpenBaoHealth> {
      if (cluster !== undefined) return cluster.health(call);
      let body: unknown;
      try {
        // sys/health answers a sealed or standby node's state with a status of its own.
        body = await call({
          operation: 'health',
          method: 'GET',
          path: '/sys/health',
          idempotent: true,
          anonymous: true,
          anyStatus: true,
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

    async tokenRoleStatus(name) {
      try {
        await call({
          operation: 'token role read',
          method: 'GET',
          path: apiPath('auth', 'token', 'roles', name),
          idempotent: true,
        });
        return 'present';
      } catch (error) {
        const kind = error instanceof OpenBaoError ? error.kind : 'upstream';
        if (kind === 'not_found') return 'missing';
        if (kind === 'permission_denied') return 'forbidden';
        return 'unavailable';
      }
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
    async jwtLogin(mount, role, jwt) {
      const body = await call({
        operation: 'kubernetes login',
        method: 'POST',
        path: apiPath('auth', mount, 'login'),
        json: { role, jwt },
        idempotent: false,
        anonymous: true,
      });
      return parseAuth('kubernetes login', body);
    },
  };
}
