/**
 * The few Keystone v3 calls the application-credential provider makes: a login for the
 * rotator, and create / find / delete / authenticate for application credentials. Errors
 * are in our own words (TargetError, RotationConfigError): Keystone's bodies can echo
 * request fields, so they are never logged or stored.
 *
 * Measured against keystone 30.0.0: a duplicate name is 409; a token from a restricted
 * application credential may not create new ones (403); after DELETE, authenticating with
 * the old credential answers 404 (not 401) and its tokens stop working at once.
 */
import { isSafeUrl } from '../../config/schema.js';
import { readCapped } from '../../http/read-capped.js';
import { RotationConfigError, TargetError } from '../driver.js';

/** Every Keystone call is bounded: a hung Keystone fails the step, which is retried. */
const TIMEOUT_MS = 15000;
/** Keystone's answers to these calls are a few KiB; anything far larger is refused. */
const MAX_BODY_BYTES = 1024 * 1024;

/** The rotator's login as its KV secret holds it (clouds.yaml `auth` field names). */
export type RotatorLogin = Readonly<Record<string, unknown>>;

export interface KeystoneSession {
  readonly token: string;
  readonly userId: string;
}

export interface NewApplicationCredential {
  readonly name: string;
  readonly secret: string;
  readonly description: string;
  readonly expiresAt?: string;
  readonly roles?: readonly string[];
  readonly accessRules?: readonly { service: string; method: string; path: string }[];
}

function text(data: RotatorLogin, key: string): string | undefined {
  const v = data[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The identity endpoint (`…/v3`) from a clouds.yaml-style auth_url, with or without /v3. */
export function identityUrl(login: RotatorLogin): string {
  const authUrl = text(login, 'auth_url');
  if (authUrl === undefined) throw new RotationConfigError('the rotator secret needs auth_url');
  if (!isSafeUrl(authUrl)) {
    throw new RotationConfigError(
      'the rotator auth_url must be https (plain http only to loopback), without credentials',
    );
  }
  const trimmed = authUrl.replace(/\/+$/, '');
  return trimmed.endsWith('/v3') ? trimmed : `${trimmed}/v3`;
}

function named(id: string | undefined, name: string | undefined, domain: object | undefined) {
  if (id !== undefined) return { id };
  return { name, ...(domain ? { domain } : {}) };
}

function domainOf(login: RotatorLogin, prefix: 'user' | 'project'): object {
  const id = text(login, `${prefix}_domain_id`);
  if (id !== undefined) return { id };
  return { name: text(login, `${prefix}_domain_name`) ?? 'Default' };
}

/** The `auth` body of the rotator's login: a password, or an unrestricted credential. */
function loginBody(login: RotatorLogin): object {
  const credentialId = text(login, 'application_credential_id');
  const credentialSecret = text(login, 'application_credential_secret');
  if (credentialId !== undefined && credentialSecret !== undefined) {
    return {
      identity: {
        methods: ['application_credential'],
        application_credential: { id: credentialId, secret: credentialSecret },
      },
    };
  }
  const password = text(login, 'password');
  const userId = text(login, 'user_id');
  const username = text(login, 'username');
  if (password === undefined || (userId === undefined && username === undefined)) {
    throw new RotationConfigError(
      'the rotator secret needs password with user_id or username, or application_credential_id and application_credential_secret',
    );
  }
  const projectId = text(login, 'project_id');
  const projectName = text(login, 'project_name');
  if (projectId === undefined && projectName === undefined) {
    throw new RotationConfigError(
      'the rotator secret needs project_id or project_name: an application credential belongs to one project',
    );
  }
  return {
    identity: {
      methods: ['password'],
      password: { user: { ...named(userId, username, domainOf(login, 'user')), password } },
    },
    scope: { project: named(projectId, projectName, domainOf(login, 'project')) },
  };
}

async function call(
  url: string,
  what: string,
  init: { method: string; token?: string; body?: unknown; subjectToken?: string },
): Promise<{ status: number; body: unknown; subjectToken: string | null }> {
  let response: Response;
  let bytes: Uint8Array | undefined;
  try {
    response = await fetch(url, {
      method: init.method,
      headers: {
        accept: 'application/json',
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(init.token === undefined ? {} : { 'x-auth-token': init.token }),
        ...(init.subjectToken === undefined ? {} : { 'x-subject-token': init.subjectToken }),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
      redirect: 'error',
    });
    bytes = await readCapped(response, MAX_BODY_BYTES);
  } catch {
    // The connection failed, timed out or broke off mid-answer.
    throw new TargetError(`Keystone did not answer (${what})`);
  }
  if (bytes === undefined) throw new TargetError(`Keystone answer too large (${what})`);
  const raw = new TextDecoder().decode(bytes);
  let body: unknown;
  try {
    body = raw === '' ? undefined : JSON.parse(raw);
  } catch {
    body = undefined;
  }
  return { status: response.status, body, subjectToken: response.headers.get('x-subject-token') };
}

function unexpected(what: string, status: number): TargetError {
  return new TargetError(`Keystone answered ${status} (${what})`);
}

export class KeystoneClient {
  readonly url: string;

  constructor(private readonly login: RotatorLogin) {
    this.url = identityUrl(login);
  }

  /** A token for the rotator and its user id (application credentials are per user). */
  async session(): Promise<KeystoneSession> {
    const answer = await call(`${this.url}/auth/tokens`, 'rotator login', {
      method: 'POST',
      body: { auth: loginBody(this.login) },
    });
    if (answer.status === 401 || answer.status === 404) {
      throw new TargetError(
        `Keystone refused the rotator login (${answer.status}): check the rotator secret`,
      );
    }
    const userId = (answer.body as { token?: { user?: { id?: unknown } } } | undefined)?.token?.user
      ?.id;
    if (answer.status !== 201 || answer.subjectToken === null || typeof userId !== 'string') {
      throw unexpected('rotator login', answer.status);
    }
    return { token: answer.subjectToken, userId };
  }

  private credentialsUrl(session: KeystoneSession): string {
    return `${this.url}/users/${encodeURIComponent(session.userId)}/application_credentials`;
  }

  /** The id of the user's credential with this name, if there is one. */
  async find(session: KeystoneSession, name: string): Promise<string | undefined> {
    const what = 'find application credential';
    const answer = await call(
      `${this.credentialsUrl(session)}?name=${encodeURIComponent(name)}`,
      what,
      {
        method: 'GET',
        token: session.token,
      },
    );
    if (answer.status !== 200) throw unexpected(what, answer.status);
    const list = (
      answer.body as { application_credentials?: Array<{ id?: unknown; name?: unknown }> }
    )?.application_credentials;
    if (!Array.isArray(list)) throw unexpected(what, answer.status);
    const found = list.find((c) => c.name === name);
    return typeof found?.id === 'string' ? found.id : undefined;
  }

  /** Creates the credential; `exists` when one with that name is already there (a retry). */
  async create(
    session: KeystoneSession,
    credential: NewApplicationCredential,
  ): Promise<'created' | 'exists'> {
    const what = 'create application credential';
    const answer = await call(this.credentialsUrl(session), what, {
      method: 'POST',
      token: session.token,
      body: {
        application_credential: {
          name: credential.name,
          secret: credential.secret,
          description: credential.description,
          unrestricted: false,
          expires_at: credential.expiresAt ?? null,
          ...(credential.roles ? { roles: credential.roles.map((name) => ({ name })) } : {}),
          ...(credential.accessRules ? { access_rules: credential.accessRules } : {}),
        },
      },
    });
    if (answer.status === 201) return 'created';
    if (answer.status === 409) return 'exists';
    if (answer.status === 403) {
      throw new RotationConfigError(
        'Keystone refused to create an application credential (403): the rotator must log in with a password or an unrestricted application credential, and hold the roles asked for',
      );
    }
    if (answer.status === 400 || answer.status === 404) {
      throw new RotationConfigError(
        `Keystone refused the application credential (${answer.status}): check roles and accessRules`,
      );
    }
    throw unexpected(what, answer.status);
  }

  /** Deletes a credential of the user; one already gone is fine. */
  async delete(session: KeystoneSession, id: string): Promise<void> {
    const what = 'delete application credential';
    const answer = await call(`${this.credentialsUrl(session)}/${encodeURIComponent(id)}`, what, {
      method: 'DELETE',
      token: session.token,
    });
    if (answer.status === 204 || answer.status === 404) return;
    throw unexpected(what, answer.status);
  }

  /**
   * Whether the credential gets a token, as a job's client would; the token is revoked
   * at once. 401 and 404 (a deleted credential) mean refused.
   */
  async authenticates(id: string, secret: string): Promise<boolean> {
    const what = 'application credential login';
    const answer = await call(`${this.url}/auth/tokens`, what, {
      method: 'POST',
      body: {
        auth: {
          identity: { methods: ['application_credential'], application_credential: { id, secret } },
        },
      },
    });
    if (answer.status === 401 || answer.status === 404) return false;
    if (answer.status !== 201 || answer.subjectToken === null)
      throw unexpected(what, answer.status);
    const token = answer.subjectToken;
    await call(`${this.url}/auth/tokens`, 'revoke test token', {
      method: 'DELETE',
      token,
      subjectToken: token,
    }).catch(() => {}); // it expires anyway; the test's answer stands
    return true;
  }
}
