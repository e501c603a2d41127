/**
 * A stand-in for zuul-web's OIDC side: an RSA signing key, the key set and discovery
 * document on loopback under zuul-web's own routes, and tokens minted exactly like Zuul's
 * executor mints them (shared/design/zuul-token.md). Used by `zsb dev` and by tests; it
 * never listens beyond 127.0.0.1 unless told to.
 *
 * Routes as zuul-web 14.3 serves them: the key set at `/oidc/jwks` (and per tenant
 * `/oidc/tenant/{t}/jwks`), discovery at the root `/.well-known/openid-configuration`
 * (and `/oidc/tenant/{t}/.well-known/openid-configuration`), whose `jwks_uri` is
 * `{root}/oidc/jwks`. The backwards-compat key set routes that Zuul removes after Zuul 15
 * are served unless `compatRoutes: false`; with `dashboardForUnknownPaths` any other path
 * gets 200 and HTML, as zuul-web answers with its dashboard.
 */

import type { JsonWebKey } from 'node:crypto';
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type KeyObject,
  randomBytes,
  sign,
} from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { z } from 'zod';

const generateRsaKeyPair = promisify(generateKeyPair);

/** The claims Zuul puts in every token secret's token. */
export interface ZuulClaims {
  iss: string;
  sub: string;
  'build-uuid': string;
  'job-name': string;
  playbook: string;
  pipeline: string;
  tenant: string;
  iat: number;
  exp: number;
  aud: string | string[];
}

export interface MintOptions {
  /** `exp - iat`; Zuul's secret `ttl`. */
  ttlSeconds?: number;
  /** Epoch seconds; defaults to the issuer's clock. */
  iat?: number;
  /** Canonical project placed in `sub`. */
  project?: string;
  /** Zuul secret name placed in `sub`. */
  secretName?: string;
  /** Merged over Zuul's header; the signature stays RS256 whatever `alg` says. */
  header?: Record<string, unknown>;
  /** Claims to leave out entirely. */
  omit?: string[];
}

/** How the key set endpoints misbehave, for tests of the broker's cache. */
export type ZuulIssuerMode =
  | 'ok'
  | 'down'
  | 'garbage'
  | 'oversize'
  | 'slow'
  | 'redirect'
  | 'http500';

export interface ZuulIssuerOptions {
  /** RSA modulus; Zuul uses 4096, tests may use 2048 to stay fast. */
  modulusLength?: number;
  host?: string;
  port?: number;
  /** Epoch milliseconds, for `iat` defaults. */
  now?: () => number;
  /** Start with this key instead of generating one (a restarted `zsb dev`). */
  signingKey?: ZuulSigningKeyExport;
  /** Serve the key set routes Zuul marks "remove after zuul 15" (default true, as 14.3 does). */
  compatRoutes?: boolean;
  /** Answer unknown paths with 200 and HTML like zuul-web (default: 404). */
  dashboardForUnknownPaths?: boolean;
}

/** The current signing key, for `zsb dev token` in another process. Secret: store 0600. */
export interface ZuulSigningKeyExport {
  issuer: string;
  version: number;
  privateJwk: JsonWebKey;
}

/** The realistic test token of zuul-token.md, minus the values each mint sets. */
export const DEFAULT_ZUUL_TOKEN = {
  tenant: 'scs',
  project: 'github.com/SovereignCloudStack/standards',
  secretName: 'openbao-id',
  jobName: 'scs-compliance-check',
  pipeline: 'periodic-daily',
  playbook: 'github.com/SovereignCloudStack/standards/playbooks/compliance.yaml',
  audience: 'https://secrets.example.org',
  ttlSeconds: 900,
} as const;

const SigningKeyFileSchema = z.object({
  issuer: z.string(),
  version: z.number().int().min(0),
  privateJwk: z.record(z.string(), z.unknown()),
});

/** zuul-web's current key set routes (zuul/web/__init__.py, 14.3). */
const JWKS_PATH = /^\/oidc(?:\/tenant\/[^/]+)?\/jwks$/;
/** Discovery at the root (not under /oidc), and per tenant. */
const DISCOVERY_PATH = /^(?:\/oidc\/tenant\/[^/]+)?\/\.well-known\/openid-configuration$/;
/** "backwards compat, remove after zuul 15". */
const COMPAT_JWKS_PATH = /^(?:\/oidc(?:\/[^/]+)?)?\/\.well-known\/jwks$|^\/oidc\/[^/]+\/jwks$/;
/** What zuul-web's dashboard looks like to a client that expected JSON. */
const DASHBOARD_HTML =
  '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Zuul</title></head><body><div id="root"></div></body></html>';

interface SigningKey {
  readonly version: number;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

function base64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function kidOf(version: number): string {
  return `RS256-${version}`;
}

export class ZuulIssuer {
  readonly #modulusLength: number;
  readonly #now: () => number;
  readonly #server: Server | undefined;
  readonly #issuer: string;
  #keys: SigningKey[];
  #mode: ZuulIssuerMode = 'ok';
  #discoveryMode: ZuulIssuerMode = 'ok';
  #jwksRequests = 0;
  #discoveryRequests = 0;
  readonly #compatRoutes: boolean;
  readonly #dashboard: boolean;

  private constructor(init: {
    issuer: string;
    keys: SigningKey[];
    modulusLength: number;
    now: () => number;
    server?: Server;
    compatRoutes?: boolean;
    dashboard?: boolean;
  }) {
    this.#compatRoutes = init.compatRoutes ?? true;
    this.#dashboard = init.dashboard ?? false;
    this.#issuer = init.issuer;
    this.#keys = init.keys;
    this.#modulusLength = init.modulusLength;
    this.#now = init.now;
    this.#server = init.server;
  }

  /** Generates (or loads) a key and serves the key set on loopback. */
  static async start(options: ZuulIssuerOptions = {}): Promise<ZuulIssuer> {
    const modulusLength = options.modulusLength ?? 4096;
    const key =
      options.signingKey === undefined
        ? await generateSigningKey(0, modulusLength)
        : importSigningKey(options.signingKey);
    const host = options.host ?? '127.0.0.1';
    let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
      res.statusCode = 503;
      res.end();
    };
    const server = createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('issuer is not on TCP');
    const { port } = address;
    const hostInUrl = host.includes(':') ? `[${host}]` : host;
    const issuer = new ZuulIssuer({
      issuer: `http://${hostInUrl}:${port}`,
      keys: [key],
      modulusLength,
      now: options.now ?? Date.now,
      server,
      compatRoutes: options.compatRoutes ?? true,
      dashboard: options.dashboardForUnknownPaths ?? false,
    });
    handler = (req, res) => issuer.#handle(req, res);
    return issuer;
  }

  /** A mint-only issuer (no server) holding a key exported by a running one. */
  static fromPrivateJwk(
    exported: ZuulSigningKeyExport,
    options: Pick<ZuulIssuerOptions, 'now' | 'modulusLength'> = {},
  ): ZuulIssuer {
    return new ZuulIssuer({
      issuer: exported.issuer,
      keys: [importSigningKey(exported)],
      modulusLength: options.modulusLength ?? 4096,
      now: options.now ?? Date.now,
    });
  }

  static async fromSigningKeyFile(
    path: string,
    options: Pick<ZuulIssuerOptions, 'now' | 'modulusLength'> = {},
  ): Promise<ZuulIssuer> {
    const parsed = SigningKeyFileSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
    if (!parsed.success) throw new Error('signing key file is not a Zuul signing key export');
    return ZuulIssuer.fromPrivateJwk(parsed.data, options);
  }

  /** `iss`: the web root, no trailing slash, like Zuul. */
  get issuer(): string {
    return this.#issuer;
  }

  /** The key set URL zuul-web's discovery document names. */
  get jwksUrl(): string {
    return `${this.#issuer}/oidc/jwks`;
  }

  /** Where OpenID discovery looks: at the root, as zuul-web serves it. */
  get discoveryUrl(): string {
    return `${this.#issuer}/.well-known/openid-configuration`;
  }

  /** `kid` of the key new tokens are signed with. */
  get kid(): string {
    return kidOf(this.#current().version);
  }

  /** How many times the key set was requested, whatever the mode answered. */
  get jwksRequests(): number {
    return this.#jwksRequests;
  }

  /** How many times a discovery document was requested. */
  get discoveryRequests(): number {
    return this.#discoveryRequests;
  }

  /** How the key set routes answer. */
  setMode(mode: ZuulIssuerMode): void {
    this.#mode = mode;
  }

  /** How the discovery routes answer. */
  setDiscoveryMode(mode: ZuulIssuerMode): void {
    this.#discoveryMode = mode;
  }

  /** The claim set Zuul would mint, with overrides and omissions applied. */
  buildClaims(
    claims: Partial<ZuulClaims> & Record<string, unknown> = {},
    opts: MintOptions = {},
  ): Record<string, unknown> {
    const tenant = claims.tenant ?? DEFAULT_ZUUL_TOKEN.tenant;
    const project = opts.project ?? DEFAULT_ZUUL_TOKEN.project;
    const secretName = opts.secretName ?? DEFAULT_ZUUL_TOKEN.secretName;
    const iat = opts.iat ?? Math.floor(this.#now() / 1000);
    const ttl = opts.ttlSeconds ?? DEFAULT_ZUUL_TOKEN.ttlSeconds;
    const built: Record<string, unknown> = {
      iss: this.#issuer,
      sub: `secret:${tenant}/${project}/${secretName}`,
      'build-uuid': randomBytes(16).toString('hex'),
      'job-name': DEFAULT_ZUUL_TOKEN.jobName,
      playbook: DEFAULT_ZUUL_TOKEN.playbook,
      pipeline: DEFAULT_ZUUL_TOKEN.pipeline,
      tenant,
      iat,
      exp: iat + ttl,
      aud: DEFAULT_ZUUL_TOKEN.audience,
      ...claims,
    };
    for (const name of opts.omit ?? []) delete built[name];
    return built;
  }

  /** Signs any header and payload with the current key (RS256), for crafted test tokens. */
  sign(payload: Record<string, unknown>, header: Record<string, unknown> = {}): string {
    const key = this.#current();
    const fullHeader = { typ: 'JWT', alg: 'RS256', kid: kidOf(key.version), ...header };
    const signingInput = `${base64urlJson(fullHeader)}.${base64urlJson(payload)}`;
    const signature = sign('sha256', Buffer.from(signingInput), key.privateKey);
    return `${signingInput}.${signature.toString('base64url')}`;
  }

  /** A token exactly like Zuul's for one playbook run. */
  mint(claims: Partial<ZuulClaims> & Record<string, unknown> = {}, opts: MintOptions = {}): string {
    return this.sign(this.buildClaims(claims, opts), opts.header ?? {});
  }

  /** The document served at `/oidc/jwks`. */
  publicJwks(): { keys: JsonWebKey[] } {
    return {
      keys: this.#keys.map((key) => ({
        ...key.publicKey.export({ format: 'jwk' }),
        alg: 'RS256',
        use: 'sig',
        kid: kidOf(key.version),
        key_ops: ['verify'],
      })),
    };
  }

  /** SPKI PEM of the current key (for key-confusion tests). */
  publicKeyPem(): string {
    return this.#current().publicKey.export({ format: 'pem', type: 'spki' }).toString();
  }

  /** Zuul's scheduled rotation: a new key signs, old keys stay published. */
  async rotateKey(): Promise<void> {
    const next = await generateSigningKey(this.#current().version + 1, this.#modulusLength);
    this.#keys = [...this.#keys, next];
  }

  /** `zuul-admin delete-oidc-signing-keys`: all keys gone, a new one starts again at version 0. */
  async resetKeys(): Promise<void> {
    this.#keys = [await generateSigningKey(0, this.#modulusLength)];
  }

  exportPrivateJwk(): ZuulSigningKeyExport {
    const key = this.#current();
    return {
      issuer: this.#issuer,
      version: key.version,
      privateJwk: key.privateKey.export({ format: 'jwk' }),
    };
  }

  /** Writes the current signing key for `zsb dev token`; readable by the owner only. */
  async writeSigningKeyFile(path: string): Promise<void> {
    await writeFile(path, `${JSON.stringify(this.exportPrivateJwk())}\n`, { mode: 0o600 });
    // `mode` applies only when the file is created; an existing file keeps its old mode.
    await chmod(path, 0o600);
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined || !server.listening) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Held responses ('slow') and keep-alive sockets would otherwise delay close forever.
      server.closeAllConnections();
    });
  }

  #current(): SigningKey {
    const key = this.#keys.at(-1);
    if (key === undefined) throw new Error('issuer has no signing key');
    return key;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const isJwks = JWKS_PATH.test(path) || (this.#compatRoutes && COMPAT_JWKS_PATH.test(path));
    const isDiscovery = DISCOVERY_PATH.test(path);
    if (req.method !== 'GET' || (!isJwks && !isDiscovery)) {
      if (this.#dashboard && req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(DASHBOARD_HTML);
      } else {
        res.writeHead(404).end();
      }
      return;
    }
    if (isJwks) this.#jwksRequests += 1;
    else this.#discoveryRequests += 1;
    const tenant = /^\/oidc\/tenant\/([^/]+)\//.exec(path)?.[1];
    switch (isJwks ? this.#mode : this.#discoveryMode) {
      case 'down':
        // Closest to a dead zuul-web while keeping the port: the connection just drops.
        req.socket.destroy();
        return;
      case 'garbage':
        res.writeHead(200, { 'content-type': 'application/json' }).end('<html>not json{');
        return;
      case 'oversize':
        this.#sendOversize(res);
        return;
      case 'slow':
        // Never answers; close() drops the connection.
        return;
      case 'redirect':
        res.writeHead(302, { location: `${this.#issuer}/elsewhere/jwks` }).end();
        return;
      case 'http500':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
        return;
      case 'ok':
        break;
    }
    const body = isJwks
      ? this.publicJwks()
      : {
          issuer: this.#issuer,
          jwks_uri:
            tenant === undefined ? this.jwksUrl : `${this.#issuer}/oidc/tenant/${tenant}/jwks`,
          response_types_supported: ['id_token'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
        };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  /** Valid JSON with real keys, but 2 MiB of it, chunked so no content-length gives it away. */
  #sendOversize(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.on('error', () => undefined);
    const keys = JSON.stringify(this.publicJwks().keys);
    res.write(`{"keys":${keys},"padding":"`);
    const chunk = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 32 && !res.destroyed; i += 1) res.write(chunk);
    res.end('"}');
  }
}

async function generateSigningKey(version: number, modulusLength: number): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateRsaKeyPair('rsa', {
    modulusLength,
    publicExponent: 0x10001,
  });
  return { version, privateKey, publicKey };
}

function importSigningKey(exported: ZuulSigningKeyExport): SigningKey {
  const privateKey = createPrivateKey({ key: exported.privateJwk, format: 'jwk' });
  return { version: exported.version, privateKey, publicKey: createPublicKey(privateKey) };
}
