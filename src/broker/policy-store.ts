/**
 * Holds the policy set the broker serves with. A set is replaced only as a whole by a
 * fully validated one, so a request sees either the old or the new set, never a mix; a
 * rejected reload leaves the previous set serving and says why (log, metric, /readyz).
 * A reload runs off the serving thread, apart from slices of about a millisecond
 * (src/policy/off-thread-load.ts, ADR 0018), so requests go on being served meanwhile;
 * the first load, with nothing serving yet, runs in-process.
 */
import { type FSWatcher, watch } from 'node:fs';
import { formatProblem, type IssuerBindings } from '../policy/load.js';
import { createPolicyLoader, type LoadWorkerOptions } from '../policy/off-thread-load.js';
import type { PolicySet } from '../policy/types.js';

export interface PolicyStatus {
  readonly status: 'ok' | 'degraded' | 'failing';
  readonly detail: string;
}

export interface PolicySource {
  current(): PolicySet | undefined;
  status(): PolicyStatus;
}

export type ReloadResult = { ok: true } | { ok: false; problems: readonly string[] };

export interface PolicyStore extends PolicySource {
  /**
   * Loads the directory again; on failure the previous set keeps serving. Loads run one
   * at a time; calls made while one waits to start share it (it reads the directory
   * after each of them), so a burst of file events costs one load after the running one.
   */
  reload(): Promise<ReloadResult>;
  /**
   * Reloads whenever a file in the directory changes (debounced), reporting each outcome.
   * Returns a function that stops watching.
   */
  watch(onReload: (result: ReloadResult) => void): () => void;
}

export function staticPolicySource(set: PolicySet): PolicySource {
  return { current: () => set, status: () => ({ status: 'ok', detail: describe(set) }) };
}

function describe(set: PolicySet): string {
  return `${set.secrets.size} secrets, ${set.grants.length} grants from ${set.files.length} files`;
}

/**
 * The broker's policy store with its first set loaded: every kind this broker serves, the
 * configured maximum TTL. An invalid set is an error naming every problem (`file:line:col`).
 */
export async function loadBrokerPolicies(
  dir: string,
  maxTtlSeconds: number,
  issuers?: IssuerBindings,
): Promise<PolicyStore> {
  const store = createPolicyStore(dir, {
    maxTtlSeconds,
    supportedKinds: ['kv', 'database', 'pki', 'token'],
    ...(issuers === undefined ? {} : { issuers }),
  });
  const loaded = await store.reload();
  if (!loaded.ok) {
    throw new Error(`policies in ${dir} are invalid:\n${loaded.problems.join('\n')}`);
  }
  return store;
}

/** Editors write a file in several steps; wait for them to settle before loading. */
const WATCH_DEBOUNCE_MS = 250;

export function createPolicyStore(
  dir: string,
  options: {
    maxTtlSeconds: number;
    supportedKinds?: readonly ('kv' | 'database' | 'pki' | 'token')[];
    /** Which issuers have a build binding: grants on build facts need one (ADR 0014). */
    issuers?: IssuerBindings;
    /** The load worker (tests give a faulty one, or a short timeout). */
    loadWorker?: LoadWorkerOptions;
  },
): PolicyStore {
  let set: PolicySet | undefined;
  let lastError: string | undefined;
  const loader = createPolicyLoader(
    dir,
    {
      maxTtlSeconds: options.maxTtlSeconds,
      supportedKinds: options.supportedKinds ?? ['kv'],
      ...(options.issuers === undefined ? {} : { issuers: options.issuers }),
    },
    options.loadWorker,
  );
  // Reloads run one at a time, so an older load can never replace a newer one.
  let queue: Promise<unknown> = Promise.resolve();
  // The queued load that has not started yet: later calls join it.
  let waiting: Promise<ReloadResult> | undefined;

  async function load(): Promise<ReloadResult> {
    waiting = undefined;
    // Compiled and indexed before the swap, not on the first request.
    const result = await loader.load();
    if (!result.ok) {
      const problems = result.problems.map(formatProblem);
      lastError = `${problems.length} problem(s), first: ${problems[0] ?? 'unknown'}`;
      return { ok: false, problems };
    }
    set = result.set;
    lastError = undefined;
    return { ok: true };
  }

  const store: PolicyStore = {
    current: () => set,
    status(): PolicyStatus {
      if (set === undefined)
        return { status: 'failing', detail: lastError ?? 'no policy set loaded' };
      if (lastError !== undefined) {
        return {
          status: 'degraded',
          detail: `last reload rejected (${lastError}); serving ${describe(set)}`,
        };
      }
      return { status: 'ok', detail: describe(set) };
    },
    reload() {
      if (waiting !== undefined) return waiting;
      const next = queue.then(load, load);
      waiting = next;
      queue = next;
      return next;
    },
    watch(onReload) {
      let timer: NodeJS.Timeout | undefined;
      let watcher: FSWatcher | undefined;
      try {
        watcher = watch(dir, { persistent: false }, () => {
          clearTimeout(timer);
          timer = setTimeout(() => {
            void store.reload().then(onReload);
          }, WATCH_DEBOUNCE_MS);
        });
        watcher.on('error', () => undefined);
      } catch {
        // A directory that cannot be watched still reloads on SIGHUP.
        watcher = undefined;
      }
      return () => {
        clearTimeout(timer);
        watcher?.close();
      };
    },
  };
  return store;
}
