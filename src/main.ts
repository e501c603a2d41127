import type { Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import pino, { type Logger } from 'pino';
import { openAuditLog } from './audit/log.js';
import { startBackupScheduler } from './backup/scheduler.js';
import { createBuildBinder, readZuulWebTokens } from './broker/build-binding.js';
import { createBuildTokenCache, liveBuildTokens } from './broker/dynamic.js';
import { loadBrokerPolicies, type PolicyStore, type ReloadResult } from './broker/policy-store.js';
import { type Config, issuerBindingsOf } from './config/schema.js';
import { findBaoBinary } from './dev/openbao-dev-server.js';
import { createApp } from './http/app.js';
import { createDynamicCheck } from './http/dynamic-check.js';
import { type ListenerTls, readTlsPairSync, startListenerTls } from './http/listener-tls.js';
import { createHttpMetrics, registerBuildTokenGauge } from './http/metrics.js';
import { createRateLimiter } from './http/rate-limit.js';
import { createTokenVerifier } from './identity/verifier.js';
import { createLeaseLedger } from './leases/ledger.js';
import { registerClusterGauges } from './openbao/cluster-metrics.js';
import { connectOpenBao } from './openbao/connect.js';
import { createRotationMetrics } from './rotation/metrics.js';
import { auditedOutcome, createRotationService, rotationSettings } from './rotation/service.js';

/** Field names whose values must never be written, whatever object reaches the logger. */
const REDACT = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'password',
  '*.password',
  'data',
  '*.data',
  'secretId',
  '*.secretId',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    redact: { paths: REDACT, censor: '[redacted]' },
    base: { service: 'zsb' },
  };
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
}

export interface RunningBroker {
  readonly url: string;
  readonly policies: PolicyStore;
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
  /** Install SIGTERM/SIGINT/SIGHUP handlers (the `serve` command does; tests do not). */
  readonly handleSignals?: boolean;
}

export async function startBroker(
  config: Config,
  options: StartOptions = {},
): Promise<RunningBroker> {
  const logger = options.logger ?? createLogger(config.log.level);
  // Read first: a bad or non-private listener key stops the broker before it connects.
  const tls = config.listen.tls;
  const tlsPair = tls ? readTlsPairSync(tls) : undefined;
  // Created first: the audit log, the OpenBao client and the key sets report into it from
  // their first call.
  const metrics = createHttpMetrics({ defaultMetrics: true });
  // Opened first: a broker that cannot audit must not start (and serves nothing later
  // while its sink fails).
  const audit = await openAuditLog(config.audit, process.stdout, {
    onWriteFailure: () => metrics.auditWriteFailures.inc(),
  });
  logger.info(
    { sink: audit.sink, hmacKeyId: audit.keyId, generatedKey: audit.generatedKey },
    'audit log open',
  );

  const {
    openbao,
    credential: brokerCredential,
    addresses,
  } = await connectOpenBao(config.openbao, logger, ({ operation, outcome, seconds, attempts }) => {
    metrics.openbaoCalls.observe({ operation, outcome }, seconds);
    if (attempts > 1) metrics.openbaoRetries.inc({ operation }, attempts - 1);
  });

  const policies = await loadBrokerPolicies(
    config.policies,
    config.maxTtlSeconds,
    issuerBindingsOf(config),
  );
  logger.info({ policies: policies.status().detail }, 'policies loaded');

  const verifier = createTokenVerifier(config.issuers, {
    maxTokenBytes: config.http.maxTokenBytes,
    logger,
    onKeySetRefresh: (outcome) => metrics.keySetRefreshes.inc({ outcome }),
  });
  // Not fatal: an issuer that is down at start shows as failing in /readyz and is retried.
  await verifier.refreshKeySets();
  // Build binding (ADR 0014): an unreadable or non-private auth token file stops the start.
  const binding = createBuildBinder(config.issuers, {
    authTokens: readZuulWebTokens(config.issuers),
    onLookup: (outcome) => metrics.buildLookups.inc({ outcome }),
  });
  // Dynamic secrets need the build token role: said at start and after each reload.
  const dynamicCheck = createDynamicCheck({
    policies: () => policies.current(),
    role: config.openbao.buildTokenRole,
    probe: (role) => openbao.tokenRoleStatus(role),
    logger,
  });
  await dynamicCheck.refresh();
  const reported = (result: ReloadResult): void => {
    metrics.policyReloads.inc({ outcome: result.ok ? 'applied' : 'rejected' });
    if (result.ok) {
      logger.info({ policies: policies.status().detail }, 'policies reloaded');
      void dynamicCheck.refresh();
    } else
      logger.error(
        { problems: result.problems },
        'policy reload rejected; the previous set keeps serving',
      );
  };
  const stopWatching = config.watchPolicies ? policies.watch(reported) : () => undefined;

  // Due rotations run inside the broker; with several instances the lock in OpenBao picks
  // one (src/rotation/protocol.ts).
  const observeRotation = createRotationMetrics(metrics.registry);
  const rotations = createRotationService({
    openbao,
    ...rotationSettings(config),
    policies: () => policies.current(),
    logger,
    onOutcome: async (rotation, outcome) => {
      observeRotation(rotation, outcome);
      const event = auditedOutcome(rotation, outcome, 'schedule');
      if (event) {
        await audit.log.rotated(event).catch((error: unknown) => {
          logger.error(
            { error: (error as Error).message },
            'audit event of a rotation not written',
          );
        });
      }
    },
  });
  const stopRotations = config.rotation.enabled
    ? rotations.schedule(config.rotation.checkIntervalSeconds)
    : async () => undefined;
  // Due backups too (docs/backup-and-restore.md); the lock in OpenBao picks one instance.
  const stopBackups = startBackupScheduler(config, {
    openbao,
    brokerToken: () => brokerCredential.token(),
    registry: metrics.registry,
    audit: audit.log,
    logger,
    defaultBinary: () => findBaoBinary(),
  });
  const buildTokens = createBuildTokenCache();
  registerBuildTokenGauge(metrics.registry, () => liveBuildTokens(buildTokens, Date.now()));
  // An OpenBao cluster: which node is active, up, lagging; autopilot (ADR 0012).
  if (addresses.length > 1) {
    registerClusterGauges(metrics.registry, async () => {
      await openbao.health();
      return openbao.lastClusterView();
    });
  }
  const app = createApp({
    verifier,
    policies,
    openbao,
    logger,
    metrics,
    limits: {
      maxBodyBytes: config.http.maxBodyBytes,
      maxTokenBytes: config.http.maxTokenBytes,
      unauthenticatedLogLinesPerSecond: config.log.unauthenticatedPerSecond,
    },
    wrapTtlSeconds: config.wrapTtlSeconds,
    credential: brokerCredential,
    dynamicCheck,
    audit: audit.log,
    rateLimiter: createRateLimiter(config.limits),
    binding,
    dynamic: {
      openbao,
      ledger: createLeaseLedger(openbao, {
        mount: config.openbao.stateMount,
        prefix: config.openbao.statePrefix,
        // Ledgers from before builds were keyed by issuer name none: only a broker that
        // trusts one Zuul can tell whose they are.
        revokeUnscopedLedgers: config.issuers.length === 1,
      }),
      buildTokenRole: config.openbao.buildTokenRole,
      buildPolicy: config.openbao.buildPolicy,
      cache: buildTokens,
      now: Date.now,
    },
  });

  // Explicit bounds, whatever NODE_OPTIONS says (--max-http-header-size): 431 above 16 KiB.
  // Timeouts are checked every second instead of Node's 30 s, so a slow client is cut off
  // close to the configured bound.
  const httpBounds = { maxHeaderSize: 16384, connectionsCheckingInterval: 1000 };
  const server: ServerType = await new Promise((resolve) => {
    const s = serve(
      {
        fetch: app.fetch,
        // Unread bodies are dropped by the app itself, within its bounds (src/http/body.ts);
        // @hono/node-server's own clean-up would reset the connection after 500 ms.
        autoCleanupIncoming: false,
        hostname: config.listen.host,
        port: config.listen.port,
        ...(tls
          ? {
              createServer: createHttpsServer,
              serverOptions: { ...httpBounds, cert: tlsPair?.cert, key: tlsPair?.key },
            }
          : { serverOptions: httpBounds }),
      },
      () => resolve(s),
    );
  });
  server.maxConnections = config.http.maxConnections;
  // `Expect: 100-continue`: no `100 Continue` on arrival. The request goes to the app like
  // any other and the route sends it only when it starts reading the body, after the token,
  // the media type and the declared length passed (src/http/body.ts); a refused request
  // gets its final answer and Node closes the connection after it.
  const http1 = server as HttpServer;
  http1.on('checkContinue', (request, response) => http1.emit('request', request, response));
  if ('requestTimeout' in server) {
    server.requestTimeout = config.http.requestTimeoutMs;
    server.headersTimeout = Math.min(10000, config.http.requestTimeoutMs);
    server.keepAliveTimeout = 5000;
  }
  const listenerTls: ListenerTls | undefined =
    tls && tlsPair && 'setSecureContext' in server
      ? startListenerTls(server, tls, tlsPair, { watch: tls.watch, logger })
      : undefined;
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${tls ? 'https' : 'http'}://${host}:${address.port}`;
  logger.info(
    { url, openbao: addresses, issuers: config.issuers.map((i) => i.issuer) },
    'broker listening',
  );

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      verifier.close();
      stopWatching();
      brokerCredential.stop();
      listenerTls?.close();
      // Stop accepting; in-flight requests finish, idle keep-alive sockets are closed.
      const timer = setTimeout(() => {
        if ('closeAllConnections' in server) server.closeAllConnections();
      }, 10000);
      timer.unref();
      // A rotation in flight stops at its next step boundary and releases its lock.
      const rotationsStopped = Promise.all([stopRotations(), stopBackups()]);
      server.close(() => {
        clearTimeout(timer);
        // After the last request: every event it wrote is synced before the process exits.
        void rotationsStopped.then(() => audit.log.close()).finally(resolve);
      });
      if ('closeIdleConnections' in server) server.closeIdleConnections();
    });
    return closing;
  };

  if (options.handleSignals) {
    const shutdown = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      void close().then(() => {
        logger.info('stopped');
        process.exit(0);
      });
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGHUP', () => {
      void policies.reload().then(reported);
      void listenerTls?.reload();
    });
  }

  return { url, policies, close };
}

/** The PEM files for TLS toward OpenBao, read once at start (an unreadable file stops it). */
