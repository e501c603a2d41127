/**
 * The `/readyz` check `dynamic`: dynamic secrets (`database`, `pki`, `token`) are issued
 * under a per-build token made through the token role `openbao.buildTokenRole`
 * (`zsb-build`). Without that role every such fetch fails with 502, and the job's answer
 * cannot say why; this check, and a log line at start and after each policy reload, can.
 * `degraded`, not `failing`: KV secrets are still served, so the instance stays in the
 * load balancer.
 */
import type { PolicySet } from '../policy/types.js';

export interface DynamicCheckResult {
  readonly status: 'ok' | 'degraded';
  readonly detail: string;
}

/** What OpenBao says about the role: there, not there, or not readable (`forbidden`, …). */
export type TokenRoleAnswer = 'present' | 'missing' | 'forbidden' | 'unavailable';

export interface DynamicCheckDeps {
  readonly policies: () => PolicySet | undefined;
  readonly role: string;
  readonly probe: (role: string) => Promise<TokenRoleAnswer>;
  readonly logger: {
    info(object: object, message: string): void;
    warn(object: object, message: string): void;
  };
  /** A result older than this is checked again when /readyz asks (default 30 s)… */
  readonly maxAgeMs?: number;
  /** …or than this when it was not ok, so a fix shows soon (default 5 s). */
  readonly maxAgeNotOkMs?: number;
  readonly now?: () => number;
}

export interface DynamicCheck {
  /** The last result, checked again first when it is older than maxAgeMs. */
  status(): Promise<DynamicCheckResult>;
  /** Checks now (start, policy reload) and logs when the result changed. */
  refresh(): Promise<DynamicCheckResult>;
}

function dynamicSecretCount(set: PolicySet | undefined): number {
  let count = 0;
  for (const secret of set?.secrets.values() ?? []) if (secret.source.kind !== 'kv') count++;
  return count;
}

export function createDynamicCheck(deps: DynamicCheckDeps): DynamicCheck {
  const now = deps.now ?? Date.now;
  const maxAgeMs = deps.maxAgeMs ?? 30000;
  const maxAgeNotOkMs = deps.maxAgeNotOkMs ?? 5000;
  const path = `auth/token/roles/${deps.role}`;
  let last: { result: DynamicCheckResult; at: number } | undefined;
  let running: Promise<DynamicCheckResult> | undefined;

  const check = async (): Promise<DynamicCheckResult> => {
    const dynamic = dynamicSecretCount(deps.policies());
    if (dynamic === 0) return { status: 'ok', detail: 'no dynamic secrets in the policies' };
    const count = `${dynamic} dynamic secret${dynamic === 1 ? '' : 's'}`;
    const answer = await deps.probe(deps.role);
    switch (answer) {
      case 'present':
        return { status: 'ok', detail: `token role ${deps.role} present for ${count}` };
      case 'missing':
        return {
          status: 'degraded',
          detail:
            `token role ${deps.role} does not exist in OpenBao: ${count} cannot be issued ` +
            '(fetches answer 502); `zsb policy compile --apply` creates it',
        };
      case 'forbidden':
        return {
          status: 'degraded',
          detail:
            `cannot tell whether token role ${deps.role} exists (needed by ${count}): the ` +
            `broker's OpenBao policy does not allow read on ${path}`,
        };
      default:
        return {
          status: 'degraded',
          detail: `cannot check token role ${deps.role} (needed by ${count}): OpenBao unavailable`,
        };
    }
  };

  const refresh = (): Promise<DynamicCheckResult> => {
    running ??= check()
      .then((result) => {
        const changed = last?.result.detail !== result.detail;
        last = { result, at: now() };
        if (changed) {
          const fields = { check: 'dynamic', role: deps.role, detail: result.detail };
          if (result.status === 'ok') deps.logger.info(fields, 'dynamic secrets: token role check');
          else deps.logger.warn(fields, 'dynamic secrets cannot be issued or checked');
        }
        return result;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  return {
    refresh,
    status: async () => {
      const maxAge = last?.result.status === 'ok' ? maxAgeMs : maxAgeNotOkMs;
      return last !== undefined && now() - last.at < maxAge ? last.result : refresh();
    },
  };
}
