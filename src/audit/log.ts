/**
 * The audit log: one JSON line per secret delivery issued, per request denied, per build
 * revoked and per secret rotated. It records who (the verified job identity) got which
 * secret names, never a value or a token; lease ids and accessors only as HMAC-SHA256
 * under the audit key, so an auditor holding the key can match them against OpenBao's
 * own audit device while the log alone is useless to an attacker.
 *
 * It has its own sink (a file, or stdout when configured so) and every method resolves
 * only once its line is written and synced: callers write the event before a secret
 * leaves the broker and serve nothing when the write fails (fail closed). Of the broker it
 * imports only the reading of private files (src/config/private-file.ts).
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { PrivateFileError, readPrivateFile } from '../config/private-file.js';

/** The parts of a verified job identity the audit log records (a structural subset of JobIdentity). */
export interface AuditIdentity {
  readonly issuer: string;
  readonly tenant: string;
  readonly project: string;
  /** The Zuul secret name the job's token came from. */
  readonly secret: string;
  readonly pipeline: string;
  readonly job: string;
  /** `build-uuid`: fine here, never in metric labels. */
  readonly build: string;
  /** What the build binding learnt from zuul-web (ADR 0014), when the issuer has one. */
  readonly buildProject?: string;
  readonly branch?: string;
  readonly ref?: string;
}

/** One delivered secret. Lease ids and accessors are written only as their HMAC. */
export interface AuditedSecret {
  readonly name: string;
  /** The grant that allowed it. */
  readonly grant: string;
  /** `kv`, `database`, `pki` or `token`. */
  readonly kind: string;
  readonly wrapped: boolean;
  /** KV version, when known. */
  readonly version?: number | null;
  readonly leaseIds?: readonly string[];
  /** Accessors of wrapping tokens or child tokens this delivery created. */
  readonly accessors?: readonly string[];
  /** Accessor of the per-build token the dynamic secret was issued under. */
  readonly buildTokenAccessor?: string;
  /** Serial of an issued certificate (public, written as is). */
  readonly certificateSerial?: string;
  /** The format of the ready file delivered with it (docs/ready-files.md). */
  readonly file?: string;
}

export interface IssuedEvent {
  readonly requestId: string;
  readonly identity: AuditIdentity;
  readonly secrets: readonly AuditedSecret[];
}

export interface DeniedEvent {
  readonly requestId: string;
  readonly identity: AuditIdentity;
  /** Names as they may be logged: undefined names already replaced by the caller. */
  readonly secrets: readonly string[];
  /** Value-free reason, e.g. `denied: a, b` or `wrap required for a by grant g`. */
  readonly reason: string;
}

/** A verified token whose build is not running (build binding, ADR 0014): answered 401. */
export interface RefusedEvent {
  readonly requestId: string;
  readonly identity: AuditIdentity;
  /** Names as they may be logged; empty for whoami. */
  readonly secrets: readonly string[];
  /** Value-free reason, e.g. `build ended (SUCCESS)` or `build unknown to zuul-web`. */
  readonly reason: string;
}

export interface RevokedEvent {
  readonly requestId: string;
  readonly identity: AuditIdentity;
  readonly revoked: number;
  /** Entries that could not be revoked now (the ledger keeps them for the next call). */
  readonly failed: number;
}

/** For the rotation scheduler (src/rotation/): one event per rotation attempt that ends. */
export interface RotatedEvent {
  /** Logical secret name as defined in the policies. */
  readonly secret: string;
  readonly outcome: 'rotated' | 'failed' | 'aborted';
  readonly trigger: 'schedule' | 'manual';
  /** A request id or run id that ties the event to the broker's log, when there is one. */
  readonly requestId?: string;
  /** The KV version that became current, when the rotation produced one. */
  readonly version?: number;
  /** Accessors or lease ids revoked or created by the rotation: written only as HMAC. */
  readonly accessors?: readonly string[];
  readonly leaseIds?: readonly string[];
  /** Value-free reason for `failed` or `aborted`. */
  readonly reason?: string;
}

/** For backups (src/backup/): one event per backup run that took or tried a snapshot. */
export interface BackupEvent {
  readonly outcome: 'verified' | 'failed';
  readonly trigger: 'schedule' | 'manual';
  /** The snapshot file's name, its SHA-256 and size, when one was written. */
  readonly file?: string;
  readonly sha256?: string;
  readonly bytes?: number;
  /** The stage that failed and a value-free reason. */
  readonly stage?: string;
  readonly reason?: string;
}

/**
 * The audit log as the rest of the broker sees it. Every method resolves once the event is
 * durably written and rejects with AuditUnavailableError otherwise; a caller about to
 * serve a secret must not serve it then.
 */
export interface AuditLog {
  issued(event: IssuedEvent): Promise<void>;
  denied(event: DeniedEvent): Promise<void>;
  refused(event: RefusedEvent): Promise<void>;
  revoked(event: RevokedEvent): Promise<void>;
  rotated(event: RotatedEvent): Promise<void>;
  backup(event: BackupEvent): Promise<void>;
  /**
   * For /readyz: `failing` while the last write failed (detail: its cause, an errno code or
   * a timeout, never data), else `ok`. While failing, a call writes an `audit.probe` event
   * (at most one a second) and answers `ok` once one lands, so an instance that receives no
   * traffic while drained from its load balancer still notices the sink came back.
   */
  status(): Promise<AuditStatus>;
  /** Resolves after pending events are written; later events are rejected. */
  close(): Promise<void>;
}

export interface AuditStatus {
  readonly status: 'ok' | 'failing';
  readonly detail: string;
}

/** Recovery probes while the sink fails: at most one per this many milliseconds. */
export const PROBE_INTERVAL_MS = 1000;

/** The sink could not take the event. The message names a cause (an errno code), no data. */
export class AuditUnavailableError extends Error {
  override readonly name = 'AuditUnavailableError';
}

/** Where the lines go. `append` gets whole lines (each ending in `\n`). */
export interface AuditSink {
  append(lines: string): Promise<void>;
  close(): Promise<void>;
}

/** Events pending on one sink beyond this are refused at once instead of queueing forever. */
export const MAX_PENDING_EVENTS = 10000;

export const MIN_HMAC_KEY_BYTES = 32;

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown error';
}

interface Pending {
  readonly lines: string;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * Appends to a file and syncs (fdatasync) before an event counts as written. Events that
 * arrive while a write is in flight are written together with one sync (group commit).
 * Before each write the path is checked: if it was renamed away (log rotation) or removed,
 * the file is opened again at the path, so a removed directory fails the write instead of
 * writing into an unlinked file.
 */
export class FileAuditSink implements AuditSink {
  private handle: FileHandle | undefined;
  private inode: number | undefined;
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  /** A failed write may have left half a line: the next one starts on a fresh line. */
  private brokenLine = false;

  private constructor(readonly file: string) {}

  /** Opens (creating, mode 0600) the file now, so a wrong path stops the broker at start. */
  static async open(file: string): Promise<FileAuditSink> {
    const sink = new FileAuditSink(file);
    try {
      await sink.ensureOpen();
    } catch (error) {
      throw new AuditUnavailableError(`cannot open audit file ${file}: ${errorCode(error)}`);
    }
    return sink;
  }

  append(lines: string): Promise<void> {
    if (this.closed) return Promise.reject(new AuditUnavailableError('audit log closed'));
    if (this.queue.length >= MAX_PENDING_EVENTS) {
      return Promise.reject(new AuditUnavailableError('too many audit events pending'));
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ lines, resolve, reject });
      this.flushing ??= this.flush().finally(() => {
        this.flushing = undefined;
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flushing;
    await this.handle?.close().catch(() => undefined);
    this.handle = undefined;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      const text = (this.brokenLine ? '\n' : '') + batch.map((p) => p.lines).join('');
      try {
        await this.writeSynced(Buffer.from(text, 'utf8'));
        this.brokenLine = false;
        for (const p of batch) p.resolve();
      } catch (error) {
        await this.handle?.close().catch(() => undefined);
        this.handle = undefined;
        const failure = new AuditUnavailableError(`audit write failed: ${errorCode(error)}`);
        for (const p of batch) p.reject(failure);
      }
    }
  }

  private async ensureOpen(): Promise<FileHandle> {
    const current = this.handle;
    if (current !== undefined) {
      // Renamed or removed: open the path again, which fails when the directory is gone.
      const onDisk = await stat(this.file).catch(() => undefined);
      if (onDisk !== undefined && onDisk.ino === this.inode) return current;
      this.handle = undefined;
      await current.close().catch(() => undefined);
    }
    const handle = await open(this.file, 'a', 0o600);
    try {
      this.inode = (await handle.stat()).ino;
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    this.handle = handle;
    return handle;
  }

  private async writeSynced(buffer: Buffer): Promise<void> {
    const handle = await this.ensureOpen();
    this.brokenLine = true;
    let offset = 0;
    while (offset < buffer.length) {
      const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset, null);
      if (bytesWritten <= 0) throw new AuditUnavailableError('audit write made no progress');
      offset += bytesWritten;
    }
    this.brokenLine = false;
    await handle.datasync();
  }
}

/** Writes to a stream (stdout), an event counting as written when the stream accepted it. */
export class StreamAuditSink implements AuditSink {
  private closed = false;
  /** `stream`: public so test support can tell a sink on process.stdout (and capture it). */
  constructor(readonly stream: NodeJS.WritableStream) {}

  append(lines: string): Promise<void> {
    if (this.closed) return Promise.reject(new AuditUnavailableError('audit log closed'));
    return new Promise<void>((resolve, reject) => {
      this.stream.write(lines, (error?: Error | null) => {
        if (error) reject(new AuditUnavailableError(`audit write failed: ${errorCode(error)}`));
        else resolve();
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export interface AuditLogOptions {
  readonly sink: AuditSink;
  /** HMAC-SHA256 key for lease ids and accessors, at least 32 bytes. */
  readonly hmacKey: Buffer;
  /** A write that takes longer fails (the event may still land later: over-reporting only). */
  readonly writeTimeoutMs: number;
  readonly now?: () => Date;
  /** Called once per failed write (events and probes), e.g. to count it in a metric. */
  readonly onWriteFailure?: () => void;
}

/** A short, public fingerprint of the HMAC key, so an auditor knows which key to use. */
export function hmacKeyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

export function createAuditLog(options: AuditLogOptions): AuditLog {
  if (options.hmacKey.length < MIN_HMAC_KEY_BYTES) {
    throw new Error(`the audit HMAC key must have at least ${MIN_HMAC_KEY_BYTES} bytes`);
  }
  const key = Buffer.from(options.hmacKey);
  const keyId = hmacKeyId(key);
  const now = options.now ?? (() => new Date());
  const hmac = (value: string) =>
    `hmac-sha256:${createHmac('sha256', key).update(value, 'utf8').digest('hex')}`;
  const hmacAll = (values: readonly string[] | undefined) => (values ?? []).map(hmac);

  const identityOf = (i: AuditIdentity) => ({
    issuer: i.issuer,
    tenant: i.tenant,
    project: i.project,
    secret: i.secret,
    pipeline: i.pipeline,
    job: i.job,
    build: i.build,
    ...(i.buildProject === undefined ? {} : { buildProject: i.buildProject }),
    ...(i.branch === undefined ? {} : { branch: i.branch }),
    ...(i.ref === undefined ? {} : { ref: i.ref }),
  });

  let closed = false;
  /** Cause of the last write when it failed; undefined after a write that landed. */
  let failure: string | undefined;
  let probing: Promise<void> | undefined;
  let lastProbe = 0;
  const write = async (record: Record<string, unknown>): Promise<void> => {
    if (closed) throw new AuditUnavailableError('audit log closed');
    try {
      await append(record);
      failure = undefined;
    } catch (error) {
      failure = (error as Error).message;
      options.onWriteFailure?.();
      throw error;
    }
  };
  /**
   * On a stream (stdout: a synchronous system call per write to a file or a pipe), the
   * lines of one event-loop turn go out in one write, each event still counting as written
   * only once the stream accepted that write; a failed write fails every event in it. The
   * file sink groups its writes itself (and bounds its queue per event), so it gets each
   * line as it comes.
   */
  const batching = options.sink instanceof StreamAuditSink;
  let batch: Array<{ line: string; resolve: () => void; reject: (error: unknown) => void }> = [];
  let lastFlush: Promise<void> = Promise.resolve();
  const flush = (): void => {
    const lines = batch;
    if (lines.length === 0) return;
    batch = [];
    let written: Promise<void>;
    try {
      written = options.sink.append(lines.map((l) => l.line).join(''));
    } catch (error) {
      written = Promise.reject(error);
    }
    lastFlush = written.then(
      () => {
        for (const l of lines) l.resolve();
      },
      (error: unknown) => {
        for (const l of lines) l.reject(error);
      },
    );
  };
  const toSink = (line: string): Promise<void> => {
    if (!batching) return options.sink.append(line);
    return new Promise<void>((resolve, reject) => {
      batch.push({ line, resolve, reject });
      if (batch.length === 1) setImmediate(flush);
    });
  };
  /** One event's line to the sink, failing after `writeTimeoutMs` (one timer, no race). */
  const append = (record: Record<string, unknown>): Promise<void> => {
    const line = `${JSON.stringify({ time: now().toISOString(), ...record, hmacKeyId: keyId })}\n`;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new AuditUnavailableError('audit write timed out')),
        options.writeTimeoutMs,
      );
      const failed = (error: unknown) => {
        clearTimeout(timer);
        reject(
          error instanceof AuditUnavailableError
            ? error
            : new AuditUnavailableError(`audit write failed: ${errorCode(error)}`),
        );
      };
      try {
        toSink(line).then(() => {
          clearTimeout(timer);
          resolve();
        }, failed);
      } catch (error) {
        failed(error);
      }
    });
  };

  return {
    issued: (e) =>
      write({
        event: 'secret.issued',
        outcome: 'issued',
        requestId: e.requestId,
        identity: identityOf(e.identity),
        secrets: e.secrets.map((s) => ({
          name: s.name,
          grant: s.grant,
          kind: s.kind,
          wrapped: s.wrapped,
          ...(s.version === undefined ? {} : { version: s.version }),
          leases: hmacAll(s.leaseIds),
          accessors: hmacAll(s.accessors),
          ...(s.buildTokenAccessor === undefined ? {} : { buildToken: hmac(s.buildTokenAccessor) }),
          ...(s.certificateSerial === undefined ? {} : { serial: s.certificateSerial }),
          ...(s.file === undefined ? {} : { file: s.file }),
        })),
      }),
    denied: (e) =>
      write({
        event: 'secret.denied',
        outcome: 'denied',
        requestId: e.requestId,
        identity: identityOf(e.identity),
        secrets: [...e.secrets],
        reason: e.reason,
      }),
    refused: (e) =>
      write({
        event: 'secret.refused',
        outcome: 'refused',
        requestId: e.requestId,
        identity: identityOf(e.identity),
        secrets: [...e.secrets],
        reason: e.reason,
      }),
    revoked: (e) =>
      write({
        event: 'build.revoked',
        outcome: e.failed > 0 ? 'partial' : 'revoked',
        requestId: e.requestId,
        identity: identityOf(e.identity),
        revoked: e.revoked,
        failed: e.failed,
      }),
    rotated: (e) =>
      write({
        event: 'secret.rotated',
        outcome: e.outcome,
        trigger: e.trigger,
        ...(e.requestId === undefined ? {} : { requestId: e.requestId }),
        secrets: [e.secret],
        ...(e.version === undefined ? {} : { version: e.version }),
        leases: hmacAll(e.leaseIds),
        accessors: hmacAll(e.accessors),
        ...(e.reason === undefined ? {} : { reason: e.reason }),
      }),
    backup: (e) =>
      write({
        event: 'backup.snapshot',
        outcome: e.outcome,
        trigger: e.trigger,
        ...(e.file === undefined ? {} : { file: e.file }),
        ...(e.sha256 === undefined ? {} : { sha256: e.sha256 }),
        ...(e.bytes === undefined ? {} : { bytes: e.bytes }),
        ...(e.stage === undefined ? {} : { stage: e.stage }),
        ...(e.reason === undefined ? {} : { reason: e.reason }),
      }),
    status: async () => {
      if (failure !== undefined && !closed && Date.now() - lastProbe >= PROBE_INTERVAL_MS) {
        lastProbe = Date.now();
        probing ??= write({ event: 'audit.probe', outcome: 'ok' })
          .catch(() => undefined)
          .finally(() => {
            probing = undefined;
          });
      }
      await probing;
      if (closed) return { status: 'failing', detail: 'audit log closed' };
      return failure === undefined
        ? { status: 'ok', detail: 'audit sink writable' }
        : { status: 'failing', detail: failure };
    },
    close: async () => {
      closed = true;
      // Events accepted before close are written before the sink closes.
      flush();
      await lastFlush;
      await options.sink.close();
    },
  };
}

/**
 * The HMAC key: the key file's content (surrounding whitespace trimmed, at least 32 bytes),
 * or 32 random bytes for this process when no file is configured (then HMACs can only be
 * matched within one process lifetime, by nobody outside it).
 */
export async function loadHmacKey(
  keyFile: string | undefined,
): Promise<{ key: Buffer; generated: boolean }> {
  if (keyFile === undefined) return { key: randomBytes(32), generated: true };
  let text: string;
  try {
    text = (await readPrivateFile(keyFile, 'audit.hmacKeyFile')).toString('utf8');
  } catch (error) {
    if (error instanceof PrivateFileError) throw error;
    throw new Error(`cannot read audit.hmacKeyFile: ${errorCode(error)}`);
  }
  const key = Buffer.from(text.trim(), 'utf8');
  if (key.length < MIN_HMAC_KEY_BYTES) {
    throw new Error(`audit.hmacKeyFile must hold at least ${MIN_HMAC_KEY_BYTES} bytes`);
  }
  return { key, generated: false };
}

export interface AuditConfig {
  readonly file?: string | undefined;
  readonly stdout?: boolean | undefined;
  readonly hmacKeyFile?: string | undefined;
  readonly writeTimeoutMs: number;
}

/** Builds the audit log from its configuration; throws (stopping the broker) when it cannot. */
export async function openAuditLog(
  config: AuditConfig,
  stdout: NodeJS.WritableStream = process.stdout,
  hooks: { readonly onWriteFailure?: () => void } = {},
): Promise<{ log: AuditLog; keyId: string; generatedKey: boolean; sink: string }> {
  const { key, generated } = await loadHmacKey(config.hmacKeyFile);
  const sink = config.file ? await FileAuditSink.open(config.file) : new StreamAuditSink(stdout);
  return {
    log: createAuditLog({
      sink,
      hmacKey: key,
      writeTimeoutMs: config.writeTimeoutMs,
      ...(hooks.onWriteFailure ? { onWriteFailure: hooks.onWriteFailure } : {}),
    }),
    keyId: hmacKeyId(key),
    generatedKey: generated,
    sink: config.file ?? 'stdout',
  };
}
