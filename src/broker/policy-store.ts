/**
 * Holds the policy set the broker serves with. A set is replaced only as a whole by a
 * fully validated one, so a request sees either the old or the new set, never a mix.
 */
import { formatProblem, loadPolicyDir } from '../policy/load.js';
import type { PolicySet } from '../policy/types.js';

export interface PolicyStatus {
  readonly status: 'ok' | 'degraded' | 'failing';
  readonly detail: string;
}

export interface PolicySource {
  current(): PolicySet | undefined;
  status(): PolicyStatus;
}

export interface PolicyStore extends PolicySource {
  /** Loads the directory again; on failure the previous set keeps serving. */
  reload(): Promise<{ ok: true } | { ok: false; problems: readonly string[] }>;
}

export function staticPolicySource(set: PolicySet): PolicySource {
  const detail = `${set.secrets.size} secrets, ${set.grants.length} grants from ${set.files.length} files`;
  return { current: () => set, status: () => ({ status: 'ok', detail }) };
}

export function createPolicyStore(dir: string, options: { maxTtlSeconds: number }): PolicyStore {
  let set: PolicySet | undefined;
  let lastError: string | undefined;
  return {
    current: () => set,
    status(): PolicyStatus {
      if (set === undefined)
        return { status: 'failing', detail: lastError ?? 'no policy set loaded' };
      const loaded = `${set.secrets.size} secrets, ${set.grants.length} grants from ${set.files.length} files`;
      if (lastError !== undefined)
        return {
          status: 'degraded',
          detail: `last reload rejected (${lastError}); serving ${loaded}`,
        };
      return { status: 'ok', detail: loaded };
    },
    async reload() {
      const result = await loadPolicyDir(dir, {
        maxTtlSeconds: options.maxTtlSeconds,
        supportedKinds: ['kv'],
      });
      if (!result.ok) {
        const problems = result.problems.map(formatProblem);
        lastError = `${problems.length} problem(s), first: ${problems[0] ?? 'unknown'}`;
        return { ok: false, problems };
      }
      set = result.set;
      lastError = undefined;
      return { ok: true };
    },
  };
}
