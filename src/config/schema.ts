/**
 * The one configuration schema (shared/design/api.md "Configuration").
 * Parsed once at start, then frozen; every key has a default that works against a
 * fresh `bao server -dev` except the few that name the installation.
 */
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';

/** Loopback literals: 127.0.0.0/8 (also IPv4-mapped, `::ffff:127.x.y.z`) and ::1. */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * A host that can only mean this machine: `localhost` or a loopback address literal.
 * A DNS name is never one, whatever it starts with (`127.0.0.1.nip.io` resolves anywhere).
 */
function isLoopbackHost(hostname: string): boolean {
  if (hostname === 'localhost') return true;
  const bare =
    hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  const family = isIP(bare);
  if (family === 4) return LOOPBACK.check(bare, 'ipv4');
  if (family === 6) return LOOPBACK.check(bare, 'ipv6');
  return false;
}

/** Plain http is accepted only toward this machine: anything else must be https. */
export function isSafeUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.username || url.password) return false;
  if (url.protocol === 'https:') return true;
  // The WHATWG parser has already lower-cased the host and normalised address literals
  // (`127.1`, `0x7f000001` → `127.0.0.1`; `[0:0:0:0:0:0:0:1]` → `[::1]`).
  return url.protocol === 'http:' && isLoopbackHost(url.hostname);
}

const safeUrl = z
  .string()
  .refine(
    isSafeUrl,
    'must be an https URL (plain http only for loopback hosts), without credentials',
  );

/** The largest TTL a grant may set unless configured otherwise (api.md: 1 h). */
export const DEFAULT_MAX_TTL_SECONDS = 3600;

const seconds = (def: number, max: number) => z.number().int().min(1).max(max).default(def);

const BuildBindingSchema = z
  .object({
    /** zuul-web's root, where `/api/tenant/{tenant}/build/{uuid}` is; default: the issuer. */
    webUrl: safeUrl
      .refine((v) => !v.endsWith('/'), 'must not end with a slash')
      .refine((v) => !v.includes('?') && !v.includes('#'), 'must have no query or fragment')
      .optional(),
    /** A zuul-web auth token (JWT) for tenants that restrict reads, read from this file. */
    authTokenFile: z.string().min(1).optional(),
    /** One zuul-web request: answer within this time, body at most this size. */
    timeoutMs: z.number().int().min(100).max(30000).default(3000),
    maxBytes: z.number().int().min(1024).max(1048576).default(65536),
    /** A "running" answer serves the build's further requests this long. */
    cacheSeconds: z.number().int().min(0).max(60).default(5),
    /**
     * A build zuul-web does not know yet is waited for while its token is younger than this
     * (Zuul records a build only after the executor reports its start). Never allowed meanwhile.
     */
    startWaitSeconds: z.number().int().min(0).max(60).default(15),
    /** Builds remembered per issuer (finished ones stay refused without asking again). */
    maxEntries: z.number().int().min(16).max(1000000).default(10000),
  })
  .strict();

export const IssuerConfigSchema = z
  .object({
    /** Exact `iss` value; Zuul's web root without trailing slash. */
    issuer: safeUrl.refine((v) => !v.endsWith('/'), 'must not end with a slash (Zuul omits it)'),
    /** Where the key set is fetched; unset: found by OpenID discovery at `{issuer}/.well-known/openid-configuration` (ADR 0010). */
    jwksUrl: safeUrl.optional(),
    /** Required `aud`. */
    audience: z.string().min(1).max(1024),
    algorithms: z
      .array(
        z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA']),
      )
      .min(1)
      .default(['RS256']),
    /** Largest accepted `exp - iat` (Zuul's default tenant max-oidc-ttl). */
    maxLifetimeSeconds: seconds(10800, 86400),
    /** Largest accepted `now - iat`. */
    maxAgeSeconds: seconds(10800, 86400),
    clockToleranceSeconds: z.number().int().min(0).max(300).default(60),
    jwks: z
      .object({
        timeoutMs: z.number().int().min(100).max(60000).default(5000),
        maxBytes: z.number().int().min(1024).max(1048576).default(65536),
        /** Refresh a key set in the background this often. */
        refreshIntervalSeconds: seconds(300, 86400),
        /** A key set older than this is not used: requests get 503. */
        maxStaleSeconds: seconds(3600, 7 * 86400),
        /**
         * At most one extra fetch this often on a failed signature with a known kid (Zuul's
         * key reset) or a stale cache. An unknown kid waits for its own refresh, paced at one
         * per second (ADR 0010).
         */
        minRefetchIntervalSeconds: seconds(30, 3600),
      })
      .strict()
      .default({
        timeoutMs: 5000,
        maxBytes: 65536,
        refreshIntervalSeconds: 300,
        maxStaleSeconds: 3600,
        minRefetchIntervalSeconds: 30,
      }),
    /**
     * Build binding (docs/zuul.md, ADR 0014): before a fetch, zuul-web must confirm that the
     * token's build is running now; grants may then match its project and branch. Absent: off.
     */
    buildBinding: BuildBindingSchema.optional(),
  })
  .strict();
export type BuildBindingConfig = z.infer<typeof BuildBindingSchema>;
export type IssuerConfig = z.infer<typeof IssuerConfigSchema>;

const AuthSchema = z.discriminatedUnion('method', [
  z.object({ method: z.literal('token'), tokenFile: z.string().min(1) }).strict(),
  z
    .object({
      method: z.literal('approle'),
      roleIdFile: z.string().min(1),
      secretIdFile: z.string().min(1),
      mount: z.string().default('approle'),
    })
    .strict(),
  // A Kubernetes service account token (projected, rotated by the kubelet) posted to
  // `auth/{mount}/login` with a role: OpenBao's kubernetes method, or its jwt method set up
  // with the cluster's service account issuer (both take `{ role, jwt }`).
  z
    .object({
      method: z.literal('kubernetes'),
      role: z.string().min(1),
      jwtFile: z.string().min(1).default('/var/run/secrets/kubernetes.io/serviceaccount/token'),
      mount: z.string().default('kubernetes'),
    })
    .strict(),
]);

/** `backup:` (docs/backup-and-restore.md): scheduled, verified raft snapshots. */
const BackupSchema = z
  .object({
    /** Run due backups inside `zsb serve` (any number of instances: a lock picks one). */
    enabled: z.boolean().default(true),
    /** Where snapshots and manifests are written (never next to the seal key). */
    directory: z.string().min(1),
    /** A cron expression (UTC) or an interval (`every`: seconds or `6h`); exactly one. */
    schedule: z.string().min(1).optional(),
    every: z.union([z.number().int().positive(), z.string().min(1)]).optional(),
    checkIntervalSeconds: seconds(60, 86400),
    lockTtlSeconds: seconds(900, 86400),
    /** Largest snapshot accepted, and the deadline of one download. */
    maxSnapshotBytes: z
      .number()
      .int()
      .min(1024)
      .default(8 * 2 ** 30),
    snapshotTimeoutSeconds: seconds(600, 86400),
    retention: z
      .object({
        hourly: z.number().int().min(0).max(10000).default(24),
        daily: z.number().int().min(0).max(10000).default(7),
        weekly: z.number().int().min(0).max(10000).default(4),
        /** Failed or unverified snapshots newer than the newest verified one, kept to examine. */
        unverified: z.number().int().min(0).max(100).default(2),
      })
      .strict()
      .default({ hourly: 24, daily: 7, weekly: 4, unverified: 2 }),
    verify: z
      .object({
        /** The static seal key of the cluster (32 bytes) and its `current_key_id`. */
        sealKeyFile: z.string().min(1),
        sealKeyId: z.string().min(1),
        /** The bao binary for the scratch node; the pinned .venv-bao/bin/bao otherwise. */
        baoBinary: z.string().min(1).optional(),
        /** A token of the cluster to read the restored canary with; the broker's own otherwise. */
        tokenFile: z.string().min(1).optional(),
        timeoutSeconds: seconds(300, 3600),
        /** Parent of the scratch node's directory (needs room for one restored snapshot). */
        scratchDir: z.string().min(1).optional(),
      })
      .strict(),
    /** Run after each verified backup with the snapshot and manifest paths appended. */
    hook: z
      .object({
        command: z.array(z.string().min(1)).min(1),
        timeoutSeconds: seconds(600, 86400),
        env: z.record(z.string().regex(/^[A-Z_][A-Z0-9_]*$/), z.string()).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((b) => Boolean(b.schedule) !== (b.every !== undefined), {
    message: 'set exactly one of schedule or every',
  });

export const ConfigSchema = z
  .object({
    listen: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Reloaded on SIGHUP and, with `watch`, when a file changes (invalid files keep the old pair). */
        tls: z
          .object({ certFile: z.string(), keyFile: z.string(), watch: z.boolean().default(true) })
          .strict()
          .optional(),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 8080 }),
    issuers: z.array(IssuerConfigSchema).min(1),
    openbao: z
      .object({
        address: safeUrl.optional(),
        addresses: z.array(safeUrl).min(1).optional(),
        auth: AuthSchema,
        timeoutMs: z.number().int().min(100).max(120000).default(10000),
        /** Bound on concurrent connections toward OpenBao. */
        maxConnections: z.number().int().min(1).max(1024).default(64),
        /** KV v2 mount and prefix where the broker keeps its own state. */
        stateMount: z.string().default('secret'),
        statePrefix: z.string().default('zsb'),
        /** Token role that creates per-build tokens, and the ACL policy they carry. */
        buildTokenRole: z.string().min(1).default('zsb-build'),
        buildPolicy: z.string().min(1).default('zsb-build'),
        namespace: z.string().optional(),
        /** PEM files for TLS toward OpenBao: a private CA, and a client certificate and key. */
        tls: z
          .object({
            caFile: z.string().min(1).optional(),
            certFile: z.string().min(1).optional(),
            keyFile: z.string().min(1).optional(),
          })
          .strict()
          .refine((t) => Boolean(t.certFile) === Boolean(t.keyFile), {
            message: 'set both certFile and keyFile, or neither',
          })
          .optional(),
      })
      .strict()
      .refine((o) => Boolean(o.address) !== Boolean(o.addresses), {
        message: 'set exactly one of address or addresses',
      }),
    policies: z.string().min(1).default('./policies'),
    /** Reload policies when a file in the directory changes (SIGHUP always reloads). */
    watchPolicies: z.boolean().default(true),
    /** Largest TTL any grant may set. */
    maxTtlSeconds: seconds(DEFAULT_MAX_TTL_SECONDS, 7 * 86400),
    wrapTtlSeconds: seconds(60, 3600),
    http: z
      .object({
        maxBodyBytes: z.number().int().min(256).max(1048576).default(16384),
        maxTokenBytes: z.number().int().min(512).max(65536).default(8192),
        requestTimeoutMs: z.number().int().min(1000).max(300000).default(30000),
        /** Open client connections at once; more are dropped when accepted. */
        maxConnections: z.number().int().min(1).max(65536).default(1024),
      })
      .strict()
      .default({
        maxBodyBytes: 16384,
        maxTokenBytes: 8192,
        requestTimeoutMs: 30000,
        maxConnections: 1024,
      }),
    limits: z
      .object({
        perIdentity: z
          .object({ rate: z.number().positive(), burst: z.number().int().positive() })
          .strict()
          .default({ rate: 20, burst: 100 }),
        global: z
          .object({ rate: z.number().positive(), burst: z.number().int().positive() })
          .strict()
          .default({ rate: 2000, burst: 4000 }),
      })
      .strict()
      .default({ perIdentity: { rate: 20, burst: 100 }, global: { rate: 2000, burst: 4000 } }),
    rotation: z
      .object({
        /** Run due rotations inside `zsb serve` (any number of instances: a lock picks one). */
        enabled: z.boolean().default(true),
        /** How often the scheduler looks for due rotations. */
        checkIntervalSeconds: seconds(60, 86400),
        /** A holder that stops renewing its lock loses it after this long. */
        lockTtlSeconds: seconds(120, 3600),
        /** Attempts per step for transient errors (backoff with jitter between them). */
        attempts: z.number().int().min(1).max(10).default(3),
        /** Rotate the broker's own AppRole secret-id (auth.method approle only). */
        brokerSecretId: z
          .object({
            /** The AppRole role the broker logs in with. */
            role: z.string().min(1),
            every: z.union([z.number().int().positive(), z.string().min(1)]).default('7d'),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({ enabled: true, checkIntervalSeconds: 60, lockTtlSeconds: 120, attempts: 3 }),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
        /** 401 request lines written one by one per second; beyond, one summary per second. */
        unauthenticatedPerSecond: z.number().int().min(0).max(100000).default(50),
      })
      .strict()
      .default({ level: 'info', unauthenticatedPerSecond: 50 }),
    /** The audit log's own sink (src/audit/): a file, or stdout when no file is set. */
    audit: z
      .object({
        file: z.string().min(1).optional(),
        stdout: z.literal(true).optional(),
        /** HMAC-SHA256 key for lease ids and accessors; random per process when absent. */
        hmacKeyFile: z.string().min(1).optional(),
        writeTimeoutMs: z.number().int().min(100).max(60000).default(5000),
      })
      .strict()
      .refine((a) => Boolean(a.file) !== Boolean(a.stdout), {
        message: 'set exactly one of file or stdout: true',
      })
      .default({ stdout: true, writeTimeoutMs: 5000 }),
    backup: BackupSchema.optional(),
  })
  .strict()
  .refine(
    (c) =>
      c.issuers.every(
        (i) =>
          i.buildBinding === undefined ||
          i.buildBinding.startWaitSeconds * 1000 + i.buildBinding.timeoutMs <
            c.http.requestTimeoutMs,
      ),
    {
      // A job waiting for its build's record must get an answer before its request times out.
      message: 'buildBinding.startWaitSeconds plus timeoutMs must stay below http.requestTimeoutMs',
      path: ['issuers'],
    },
  )
  .refine((c) => c.rotation.brokerSecretId === undefined || c.openbao.auth.method === 'approle', {
    message: 'rotates an AppRole secret-id: needs openbao.auth.method approle',
    path: ['rotation', 'brokerSecretId'],
  });

export type Config = z.infer<typeof ConfigSchema>;

/** The configured issuers and those with a build binding (for policy loading, ADR 0014). */
export function issuerBindingsOf(config: Pick<Config, 'issuers'>): {
  configured: string[];
  bound: Set<string>;
} {
  return {
    configured: config.issuers.map((i) => i.issuer),
    bound: new Set(config.issuers.filter((i) => i.buildBinding).map((i) => i.issuer)),
  };
}
