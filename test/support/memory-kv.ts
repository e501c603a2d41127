/**
 * An in-memory KV v2 for unit tests of the broker's own code (rotation state, KV secrets):
 * every version kept, check-and-set as OpenBao does it (`cas` = the current version, 0 =
 * create only; a mismatch is `cas_mismatch`). `around` wraps every call, so a test can make
 * it slow, a scheduling point of fast-check, or fail it. Integration tests use a real
 * OpenBao instead.
 */
import { OpenBaoError } from '../../src/openbao/errors.js';
import type { KvEntry, KvReader, KvWriter } from '../../src/openbao/interface.js';

export type AroundCall = <T>(label: string, action: () => T) => Promise<T>;

export class MemoryKv implements KvReader, KvWriter {
  readonly #versions = new Map<string, KvEntry[]>();

  constructor(private readonly around: AroundCall = async (_label, action) => action()) {}

  /** Every version of `mount/path`, oldest first (the live list). */
  history(mount: string, path: string): KvEntry[] {
    const key = `${mount}/${path}`;
    let list = this.#versions.get(key);
    if (list === undefined) {
      list = [];
      this.#versions.set(key, list);
    }
    return list;
  }

  latest(mount: string, path: string): KvEntry | null {
    const list = this.history(mount, path);
    return list[list.length - 1] ?? null;
  }

  /** Writes a new version directly, as someone outside the code under test would. */
  put(mount: string, path: string, data: Record<string, unknown>): void {
    const list = this.history(mount, path);
    list.push({ data, version: list.length + 1 });
  }

  /** Paths (`mount/path`) that hold at least one version. */
  paths(): string[] {
    return [...this.#versions.entries()].filter(([, l]) => l.length > 0).map(([k]) => k);
  }

  kvRead(mount: string, path: string): Promise<KvEntry | null> {
    return this.around(`read ${path}`, () => this.latest(mount, path));
  }

  kvWrite(
    mount: string,
    path: string,
    data: Readonly<Record<string, unknown>>,
    options?: { cas?: number },
  ): Promise<{ version: number }> {
    return this.around(`write ${path}`, () => {
      const list = this.history(mount, path);
      if (options?.cas !== undefined && options.cas !== list.length) {
        throw new OpenBaoError('kv write', 'cas_mismatch', 400);
      }
      list.push({ data: structuredClone(data), version: list.length + 1 });
      return { version: list.length };
    });
  }

  async kvReadWrapped(): Promise<never> {
    throw new Error('not part of this fake');
  }

  async wrapData(): Promise<never> {
    throw new Error('not part of this fake');
  }
}
