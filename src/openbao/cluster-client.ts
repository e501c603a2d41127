/**
 * Calls and readiness of a cluster-aware client (ADR 0012), on top of the router
 * (cluster.ts) and the client's own transport (client.ts passes `send`, which already holds
 * each node's connection pool). Kept apart from client.ts: how a call finds its node is this file,
 * how bytes travel and errors are classified is client.ts.
 */
import { type ClusterRouter, type ClusterView, describeCluster } from './cluster.js';
import { isTransient, OpenBaoError, type OpenBaoErrorKind } from './errors.js';
import type { OpenBaoHealth } from './interface.js';

/** One call as the client describes it (client.ts `RawCall` fits). */
export interface ClusterCall {
  readonly operation: string;
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST';
  readonly path: string;
  readonly json?: unknown;
  /** Only idempotent calls are sent again once sent. */
  readonly idempotent: boolean;
  readonly anonymous?: boolean;
  /** Every status is an answer (client.ts `RawCall.anyStatus`). */
  readonly anyStatus?: boolean;
}

/** One exchange with one node (transport.ts `ExchangeRequest`). */
export interface NodeRequest {
  readonly path: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly timeoutMs: number;
  readonly json?: unknown;
}

export interface ClusterCallerOptions {
  /**
   * Sends one request to the node at `index` and gives the answer's body; throws what the
   * transport threw, or the failed status (which `classify` understands).
   */
  readonly send: (index: number, request: NodeRequest, anyStatus?: boolean) => Promise<unknown>;
  readonly classify: (operation: string, error: unknown) => OpenBaoError;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly retryBaseDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly observe?: (observation: {
    readonly operation: string;
    readonly outcome: 'ok' | OpenBaoErrorKind;
    readonly seconds: number;
    readonly attempts: number;
  }) => void;
}

/** How long after a 500 a leader that lost its leadership has stepped down (measured < 0.5 s). */
const STEP_DOWN_GRACE_MS = 500;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export interface ClusterCaller {
  /** One call with the headers the client built (token, namespace, wrapping). */
  call(raw: ClusterCall, headers: Record<string, string>): Promise<unknown>;
  /** Readiness: `callThrough` is the client's own call (it adds the broker's token). */
  health(callThrough: (raw: ClusterCall) => Promise<unknown>): Promise<OpenBaoHealth>;
}

export function createClusterCaller(
  router: ClusterRouter,
  options: ClusterCallerOptions,
): ClusterCaller {
  /**
   * Whether the node that answered 500 stopped being active: asked at once and, since its
   * step-down may lag the failed commit by a moment, once more {@link STEP_DOWN_GRACE_MS}
   * later. Costs a wait only on a 500, which a healthy cluster does not answer.
   */
  async function steppedDown(index: number): Promise<boolean> {
    if (!(await router.isActiveNow(index))) return true;
    await new Promise((resolve) => setTimeout(resolve, STEP_DOWN_GRACE_MS));
    return !(await router.isActiveNow(index));
  }

  /**
   * Always to the active node. Before anything was sent, any call waits (within its
   * rounds and its timeout) for an active node to be found; once sent, only an idempotent
   * call is sent again. A node that fails, redirects or says it has no active node is
   * forgotten as active, so the next attempt looks again.
   */
  async function call(raw: ClusterCall, baseHeaders: Record<string, string>): Promise<unknown> {
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
    for (let round = 0; round < options.maxAttempts; round++) {
      if (round > 0) {
        if (sent > 0 && !raw.idempotent) break;
        const ceiling = Math.min(
          options.maxRetryDelayMs,
          options.retryBaseDelayMs * 2 ** (round - 1),
        );
        const delay = Math.max(10, Math.random() * ceiling);
        if (performance.now() - started + delay >= options.timeoutMs) break;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
      const index = await router.active();
      if (index === undefined) {
        lastError = new OpenBaoError(raw.operation, 'unavailable', 0);
        continue;
      }
      // Reads carry the fresh-read headers: should this node have stopped being active,
      // it forwards the read to the node that is, or fails it (ADR 0012).
      const headers =
        raw.method === 'GET' && !raw.anonymous
          ? { ...baseHeaders, ...router.readHeaders() }
          : baseHeaders;
      sent += 1;
      let body: unknown;
      try {
        body = await options.send(
          index,
          {
            path: raw.path,
            method: raw.method,
            headers,
            timeoutMs: options.timeoutMs,
            ...(raw.json === undefined ? {} : { json: raw.json }),
          },
          raw.anyStatus,
        );
      } catch (error) {
        lastError = options.classify(raw.operation, error);
        // A 500 from a node that is no longer active: it lost leadership under this call
        // (a leader whose raft disk filled steps down at once, and answers the call in
        // flight with an internal error). Outcome unknown, like a lost connection.
        if (
          lastError.kind === 'upstream' &&
          lastError.status === 500 &&
          (await steppedDown(index))
        ) {
          lastError = new OpenBaoError(raw.operation, 'unavailable', 500);
        }
        if (!isTransient(lastError)) {
          finish(lastError.kind);
          throw lastError;
        }
        router.lost(index);
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
   * An active node, a canary read through it (authenticated and audited, so a failing
   * audit device or a lost quorum fails it, which `sys/health` does not show), every
   * node's state and lag, and autopilot's view when the broker may read it.
   */
  async function health(
    callThrough: (raw: ClusterCall) => Promise<unknown>,
  ): Promise<OpenBaoHealth> {
    const view = await router.view();
    const active = view.active === undefined ? undefined : view.nodes[view.active];
    if (active === undefined) {
      return {
        status: 'unreachable',
        detail: `no active OpenBao node among ${view.nodes.length} (election or quorum lost); ${describeCluster(view).detail}`,
      };
    }
    try {
      await callThrough({
        operation: 'canary read',
        method: 'GET',
        path: '/auth/token/lookup-self',
        idempotent: false,
      });
    } catch (error) {
      const kind = error instanceof OpenBaoError ? error.kind : 'upstream';
      return {
        status: 'unreachable',
        detail: `canary read through the active node failed (${kind}); ${describeCluster(view).detail}`,
      };
    }
    let autopilot: ClusterView['autopilot'];
    try {
      const body = await callThrough({
        operation: 'autopilot state',
        method: 'GET',
        path: '/sys/storage/raft/autopilot/state',
        idempotent: false,
      });
      const data = isObject(body) && isObject(body.data) ? body.data : {};
      autopilot = {
        healthy: data.healthy === true,
        failureTolerance: typeof data.failure_tolerance === 'number' ? data.failure_tolerance : 0,
      };
    } catch (error) {
      autopilot = {
        unknown:
          error instanceof OpenBaoError && error.kind === 'permission_denied'
            ? 'permission denied'
            : 'unavailable',
      };
    }
    const full: ClusterView = { ...view, autopilot };
    router.record(full);
    return { status: 'ok', version: view.version ?? '', cluster: describeCluster(full) };
  }

  return { call, health };
}
