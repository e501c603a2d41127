/**
 * A PostgreSQL login's password, kept in a KV secret (`username`, `password`, and
 * optionally `host`, `port`, `database`). The admin connection comes from another KV
 * secret with the same fields, whose role may ALTER ROLE.
 *
 * Single user: the login's password changes on the server, then in KV. Between the two
 * (milliseconds, or until the rotation resumes after a crash) clients holding the old
 * value fail to log in: use alternating users where that matters.
 *
 * Alternating users: two logins take turns. The inactive one gets the new password and
 * is promoted; the one clients were using keeps its password until the next rotation, so
 * a valid credential exists at every instant.
 *
 * The password reaches PostgreSQL as a SCRAM-SHA-256 verifier computed here, so the
 * cleartext never appears in the server's statement log.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { KvReader } from '../../openbao/interface.js';
import type { GenerateSpec } from '../../policy/types.js';
import {
  ConflictError,
  type CreatedValue,
  RotationConfigError,
  type RotationDriver,
  RotationTestFailed,
} from '../driver.js';
import { generateValue } from '../generate.js';
import type { KvSecret, KvSecretRef } from './kv.js';

export interface PostgresTarget {
  /** KV secret with the admin connection. */
  readonly admin: KvSecretRef;
  /** Two logins that alternate; absent = single user. */
  readonly users?: readonly string[];
  readonly connectTimeoutMs?: number;
}

interface Connection {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
}

const SCRAM_ITERATIONS = 4096;

/** PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802/7677). */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16)): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, SCRAM_ITERATIONS, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${SCRAM_ITERATIONS}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

function field(data: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const v = data[key];
  if (typeof v === 'string' && v.length > 0) return v;
  if (typeof v === 'number') return String(v);
  return undefined;
}

/** Authentication failures (28P01 wrong password, 28000 no such login or not allowed). */
function isAuthFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '28P01' || code === '28000';
}

export function createPostgresDriver(
  openbao: KvReader,
  secret: KvSecret,
  spec: GenerateSpec,
  target: PostgresTarget,
): RotationDriver {
  const timeout = target.connectTimeoutMs ?? 10000;

  async function adminConnection(): Promise<Connection> {
    const entry = await openbao.kvRead(target.admin.mount, target.admin.path);
    const data = entry?.data ?? {};
    const user = field(data, 'username');
    const password = field(data, 'password');
    if (user === undefined || password === undefined) {
      throw new RotationConfigError('the admin secret needs username and password');
    }
    return {
      host: field(data, 'host') ?? '127.0.0.1',
      port: Number(field(data, 'port') ?? 5432),
      database: field(data, 'database') ?? 'postgres',
      user,
      password,
    };
  }

  /** Where the login connects: its own fields, else the admin's server. */
  function loginConnection(data: Readonly<Record<string, unknown>>, admin: Connection): Connection {
    const user = field(data, 'username');
    const password = field(data, 'password');
    if (user === undefined || password === undefined) {
      throw new RotationConfigError('the login secret needs username and password');
    }
    return {
      host: field(data, 'host') ?? admin.host,
      port: Number(field(data, 'port') ?? admin.port),
      database: field(data, 'database') ?? admin.database,
      user,
      password,
    };
  }

  async function withClient<T>(c: Connection, use: (client: pg.Client) => Promise<T>): Promise<T> {
    // Loaded on first use: a broker without PostgreSQL rotations never pays for the driver.
    const { default: driver } = await import('pg');
    const client = new driver.Client({
      host: c.host,
      port: c.port,
      database: c.database,
      user: c.user,
      password: c.password,
      connectionTimeoutMillis: timeout,
      statement_timeout: timeout,
    });
    // A broken connection emits 'error'; the awaited call below reports it.
    client.on('error', () => {});
    try {
      await client.connect();
      return await use(client);
    } finally {
      await client.end().catch(() => {});
    }
  }

  async function setPassword(username: string, password: string): Promise<void> {
    const admin = await adminConnection();
    await withClient(admin, async (client) => {
      await client.query(
        `ALTER ROLE ${client.escapeIdentifier(username)} WITH PASSWORD ${client.escapeLiteral(scramVerifier(password))}`,
      );
    });
  }

  return {
    async create(): Promise<CreatedValue> {
      const current = await secret.current();
      if (current.version === 0) {
        throw new RotationConfigError('the login secret does not exist: write username first');
      }
      const next: Record<string, unknown> = { ...current.data, ...generateValue(spec) };
      if (target.users !== undefined) {
        const active = field(current.data, 'username');
        const index = active === undefined ? -1 : target.users.indexOf(active);
        if (index === -1) {
          throw new RotationConfigError(
            'the login secret username is not one of the two alternating logins',
          );
        }
        next.username = target.users[1 - index];
      } else if (field(current.data, 'username') === undefined) {
        throw new RotationConfigError('the login secret needs a username');
      }
      return { base: current.version, pending: next };
    },

    checkUnchanged: (run) => secret.checkUnchanged(run),

    async set(run) {
      const username = field(run.pending, 'username');
      const password = field(run.pending, 'password');
      if (username === undefined || password === undefined) {
        throw new RotationConfigError('the pending value lacks username or password');
      }
      await setPassword(username, password);
    },

    async test(run) {
      const admin = await adminConnection();
      const login = loginConnection(run.pending, admin);
      try {
        await withClient(login, (client) => client.query('SELECT 1'));
      } catch (error) {
        if (isAuthFailure(error)) {
          throw new RotationTestFailed('the new password does not log in to PostgreSQL');
        }
        throw error;
      }
    },

    promote: (run) => secret.promote(run),

    async finish() {},

    async rollback() {
      // Alternating: only the inactive login was touched; clients never had its value.
      if (target.users !== undefined) return;
      // Single user: make the server match what KV says now, so the current value works.
      const latest = await secret.current();
      const username = field(latest.data, 'username');
      const password = field(latest.data, 'password');
      if (username === undefined || password === undefined) {
        throw new ConflictError('the login secret lost its username or password');
      }
      await setPassword(username, password);
    },
  };
}
