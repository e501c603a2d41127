/**
 * A fake of the broker's own narrow OpenBao interface, for unit tests only. It counts
 * every call so tests can prove that a request caused none. Integration tests use a real
 * OpenBao instead (test/support/openbao-global-setup.ts).
 */
import { OpenBaoError, type OpenBaoErrorKind } from '../../src/openbao/errors.js';
import type {
  KvEntry,
  OpenBao,
  OpenBaoHealth,
  WrappedResponse,
} from '../../src/openbao/interface.js';
import { registerSecretData } from './canary.js';

export class FakeOpenBao implements OpenBao {
  readonly entries = new Map<string, KvEntry>();
  readonly calls: string[] = [];
  readonly revokedAccessors: string[] = [];
  /** Paths (mount/path) whose reads fail with this kind. */
  readonly failures = new Map<string, OpenBaoErrorKind>();
  healthState: OpenBaoHealth = { status: 'ok', version: '2.7.2-fake' };
  #wrapCounter = 0;

  put(mount: string, path: string, data: Record<string, unknown>, version = 1): void {
    registerSecretData(data);
    this.entries.set(`${mount}/${path}`, { data, version });
  }

  #read(op: string, mount: string, path: string): KvEntry | null {
    const key = `${mount}/${path}`;
    this.calls.push(`${op} ${key}`);
    const failure = this.failures.get(key);
    if (failure) throw new OpenBaoError(op, failure, 0);
    return this.entries.get(key) ?? null;
  }

  async kvRead(mount: string, path: string): Promise<KvEntry | null> {
    return this.#read('kvRead', mount, path);
  }

  async kvReadWrapped(
    mount: string,
    path: string,
    wrapTtlSeconds: number,
  ): Promise<WrappedResponse> {
    const entry = this.#read('kvReadWrapped', mount, path);
    if (entry === null) throw new OpenBaoError('kv read (wrapped)', 'not_found', 404);
    return this.#wrapping(wrapTtlSeconds);
  }

  #wrapping(ttlSeconds: number): WrappedResponse {
    this.#wrapCounter++;
    return {
      token: `wrap-token-${this.#wrapCounter}`,
      accessor: `wrap-accessor-${this.#wrapCounter}`,
      ttlSeconds,
      creationTime: new Date(0).toISOString(),
    };
  }

  async wrapData(
    _data: Readonly<Record<string, unknown>>,
    wrapTtlSeconds: number,
  ): Promise<WrappedResponse> {
    this.calls.push('wrapData');
    return this.#wrapping(wrapTtlSeconds);
  }

  async kvWrite(
    mount: string,
    path: string,
    data: Readonly<Record<string, unknown>>,
  ): Promise<{ version: number }> {
    this.calls.push(`kvWrite ${mount}/${path}`);
    const version = (this.entries.get(`${mount}/${path}`)?.version ?? 0) + 1;
    this.entries.set(`${mount}/${path}`, { data, version });
    return { version };
  }

  async revokeAccessor(accessor: string): Promise<void> {
    this.calls.push('revokeAccessor');
    this.revokedAccessors.push(accessor);
  }

  async health(): Promise<OpenBaoHealth> {
    return this.healthState;
  }
}
