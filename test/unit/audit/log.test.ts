/** The audit event shapes, the HMAC of lease ids and accessors, and the file sink. */
import { createHmac, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AuditSink,
  AuditUnavailableError,
  createAuditLog,
  FileAuditSink,
  hmacKeyId,
  loadHmacKey,
  openAuditLog,
  StreamAuditSink,
} from '../../../src/audit/log.js';

const KEY = Buffer.from('k'.repeat(40));
const NOW = new Date('2026-11-25T21:00:00.000Z');
const IDENTITY = {
  issuer: 'https://zuul.example.org',
  tenant: 'scs',
  project: 'github.com/SovereignCloudStack/standards',
  secret: 'openbao-id',
  pipeline: 'periodic-daily',
  job: 'scs-compliance-check',
  build: '5f1c0e6f3b1a4c7e9d2b8a6c4e0f1a2b',
  // Fields a JobIdentity has beyond the audited ones must not be copied.
  playbook: 'playbooks/x.yaml',
};
const hmac = (value: string) =>
  `hmac-sha256:${createHmac('sha256', KEY).update(value).digest('hex')}`;

class Capture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _e: BufferEncoding, callback: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    callback();
  }
  events(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

function streamLog() {
  const out = new Capture();
  const log = createAuditLog({
    sink: new StreamAuditSink(out),
    hmacKey: KEY,
    writeTimeoutMs: 1000,
    now: () => NOW,
  });
  return { out, log };
}

describe('event shape', () => {
  it('writes an issued event with identity, names and HMACs only', async () => {
    const { out, log } = streamLog();
    await log.issued({
      requestId: 'req-1',
      identity: IDENTITY,
      secrets: [
        { name: 'compliance-clouds', grant: 'g1', kind: 'kv', wrapped: false, version: 7 },
        {
          name: 'status-page-db',
          grant: 'g2',
          kind: 'database',
          wrapped: false,
          version: null,
          leaseIds: ['database/creds/ro/abc'],
          buildTokenAccessor: 'build-accessor-1',
        },
        {
          name: 'cert',
          grant: 'g2',
          kind: 'pki',
          wrapped: true,
          accessors: ['wrap-accessor-1'],
          certificateSerial: '1a:2b',
        },
      ],
    });
    expect(out.lines).toHaveLength(1);
    expect(out.events()[0]).toEqual({
      time: NOW.toISOString(),
      event: 'secret.issued',
      outcome: 'issued',
      requestId: 'req-1',
      identity: {
        issuer: IDENTITY.issuer,
        tenant: 'scs',
        project: IDENTITY.project,
        secret: 'openbao-id',
        pipeline: 'periodic-daily',
        job: 'scs-compliance-check',
        build: IDENTITY.build,
      },
      secrets: [
        {
          name: 'compliance-clouds',
          grant: 'g1',
          kind: 'kv',
          wrapped: false,
          version: 7,
          leases: [],
          accessors: [],
        },
        {
          name: 'status-page-db',
          grant: 'g2',
          kind: 'database',
          wrapped: false,
          version: null,
          leases: [hmac('database/creds/ro/abc')],
          accessors: [],
          buildToken: hmac('build-accessor-1'),
        },
        {
          name: 'cert',
          grant: 'g2',
          kind: 'pki',
          wrapped: true,
          leases: [],
          accessors: [hmac('wrap-accessor-1')],
          serial: '1a:2b',
        },
      ],
      hmacKeyId: hmacKeyId(KEY),
    });
    expect(out.lines[0]).not.toContain('database/creds/ro/abc');
    expect(out.lines[0]).not.toContain('build-accessor-1');
    expect(out.lines[0]).not.toContain('wrap-accessor-1');
    expect(out.lines[0]).not.toContain('playbook');
  });

  it('writes denied, revoked and rotated events', async () => {
    const { out, log } = streamLog();
    await log.denied({
      requestId: 'req-2',
      identity: IDENTITY,
      secrets: ['someone-elses', '(undefined name)'],
      reason: 'denied: someone-elses',
    });
    await log.revoked({ requestId: 'req-3', identity: IDENTITY, revoked: 3, failed: 0 });
    await log.revoked({ requestId: 'req-4', identity: IDENTITY, revoked: 1, failed: 2 });
    await log.rotated({
      secret: 'compliance-clouds',
      outcome: 'rotated',
      trigger: 'schedule',
      version: 8,
      accessors: ['old-accessor'],
    });
    const [denied, revoked, partial, rotated] = out.events();
    expect(denied).toMatchObject({
      event: 'secret.denied',
      outcome: 'denied',
      requestId: 'req-2',
      identity: { tenant: 'scs', build: IDENTITY.build },
      secrets: ['someone-elses', '(undefined name)'],
      reason: 'denied: someone-elses',
    });
    expect(revoked).toMatchObject({
      event: 'build.revoked',
      outcome: 'revoked',
      revoked: 3,
      failed: 0,
    });
    expect(partial).toMatchObject({ event: 'build.revoked', outcome: 'partial', failed: 2 });
    expect(rotated).toEqual({
      time: NOW.toISOString(),
      event: 'secret.rotated',
      outcome: 'rotated',
      trigger: 'schedule',
      secrets: ['compliance-clouds'],
      version: 8,
      leases: [],
      accessors: [hmac('old-accessor')],
      hmacKeyId: hmacKeyId(KEY),
    });
  });
});

describe('HMAC key', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is HMAC-SHA256 under the configured key, trimmed, and refuses short keys', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'zsb-audit-key-'));
    const file = path.join(dir, 'key');
    await writeFile(file, `  ${KEY.toString('utf8')}\n`, { mode: 0o600 });
    const loaded = await loadHmacKey(file);
    expect(loaded).toEqual({ key: KEY, generated: false });
    await writeFile(file, 'short');
    await expect(loadHmacKey(file)).rejects.toThrow('at least 32 bytes');
    // Readable by others: refused, naming the key, the file and its mode, never the key.
    await writeFile(file, KEY);
    await chmod(file, 0o644);
    const refused = await loadHmacKey(file).catch((e: unknown) => e as Error);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toMatch(
      /^audit\.hmacKeyFile: .*\/key is accessible to group or others \(mode 0644\).*chmod 600/,
    );
    expect((refused as Error).message).not.toContain(KEY.toString('utf8'));
    await chmod(file, 0o600);
    await expect(loadHmacKey(path.join(dir, 'missing'))).rejects.toThrow('ENOENT');
    expect(() =>
      createAuditLog({
        sink: new StreamAuditSink(new Capture()),
        hmacKey: Buffer.alloc(16),
        writeTimeoutMs: 100,
      }),
    ).toThrow('at least 32 bytes');
  });

  it('is random per process when no key file is configured', async () => {
    const a = await loadHmacKey(undefined);
    const b = await loadHmacKey(undefined);
    expect(a.generated).toBe(true);
    expect(a.key).toHaveLength(32);
    expect(a.key.equals(b.key)).toBe(false);
  });

  it('gives different HMACs under different keys, so the log alone reveals nothing', async () => {
    const lines: string[] = [];
    for (const key of [KEY, randomBytes(32)]) {
      const out = new Capture();
      const log = createAuditLog({
        sink: new StreamAuditSink(out),
        hmacKey: key,
        writeTimeoutMs: 100,
      });
      await log.revoked({ requestId: 'r', identity: IDENTITY, revoked: 0, failed: 0 });
      await log.rotated({ secret: 's', outcome: 'failed', trigger: 'manual', leaseIds: ['l'] });
      lines.push(out.lines[1] ?? '');
    }
    const leases = lines.map((l) => (JSON.parse(l) as { leases: string[] }).leases[0]);
    expect(leases[0]).toBe(hmac('l'));
    expect(leases[1]).not.toBe(leases[0]);
  });
});

describe('on a stream', () => {
  it('writes the events of one event-loop turn in one write, each line whole', async () => {
    const out = new Capture();
    let writes = 0;
    const write = out.write.bind(out);
    out.write = ((...args: Parameters<typeof write>) => {
      writes++;
      return write(...args);
    }) as typeof out.write;
    const log = createAuditLog({
      sink: new StreamAuditSink(out),
      hmacKey: KEY,
      writeTimeoutMs: 1000,
    });
    const event = (requestId: string) =>
      log.revoked({ requestId, identity: IDENTITY, revoked: 0, failed: 0 });
    await Promise.all([event('r1'), event('r2'), event('r3')]);
    expect(writes).toBe(1);
    expect(out.events().map((e) => e.requestId)).toEqual(['r1', 'r2', 'r3']);
    await event('r4');
    expect(writes).toBe(2);
    // Accepted before close: written before the sink closes.
    const last = event('r5');
    await log.close();
    await last;
    expect(out.events().map((e) => e.requestId)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5']);
  });

  it('fails every event of a write the stream refuses', async () => {
    const broken = new Writable({
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error('no space'), { code: 'ENOSPC' }));
      },
    });
    broken.on('error', () => undefined);
    const log = createAuditLog({
      sink: new StreamAuditSink(broken),
      hmacKey: KEY,
      writeTimeoutMs: 1000,
    });
    const results = await Promise.allSettled(
      ['a', 'b'].map((requestId) =>
        log.revoked({ requestId, identity: IDENTITY, revoked: 0, failed: 0 }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(String((results[0] as PromiseRejectedResult).reason)).toContain('ENOSPC');
  });
});

describe('file sink', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('appends whole lines, 0600, and writes concurrent events intact', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'zsb-audit-'));
    const file = path.join(dir, 'audit.jsonl');
    await writeFile(file, '{"existing":true}\n');
    const { log } = await openAuditLog({ file, writeTimeoutMs: 2000 });
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        log.revoked({ requestId: `r${i}`, identity: IDENTITY, revoked: i, failed: 0 }),
      ),
    );
    await log.close();
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(51);
    expect(lines[0]).toBe('{"existing":true}');
    const ids = lines.slice(1).map((l) => (JSON.parse(l) as { requestId: string }).requestId);
    expect(new Set(ids).size).toBe(50);
    await expect(
      log.revoked({ requestId: 'late', identity: IDENTITY, revoked: 0, failed: 0 }),
    ).rejects.toBeInstanceOf(AuditUnavailableError);
  });

  it('creates a new file mode 0600', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'zsb-audit-'));
    const file = path.join(dir, 'new.jsonl');
    const sink = await FileAuditSink.open(file);
    await sink.append('{}\n');
    await sink.close();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('follows log rotation (rename) and fails when the directory is gone, then recovers', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'zsb-audit-'));
    const logs = path.join(dir, 'logs');
    await mkdir(logs);
    const file = path.join(logs, 'audit.jsonl');
    const { log } = await openAuditLog({ file, writeTimeoutMs: 2000 });
    const event = (requestId: string) =>
      log.revoked({ requestId, identity: IDENTITY, revoked: 0, failed: 0 });
    await event('one');
    await rename(file, `${file}.1`);
    await event('two');
    expect(await readFile(`${file}.1`, 'utf8')).toContain('"one"');
    expect(await readFile(file, 'utf8')).toContain('"two"');

    await rm(logs, { recursive: true });
    await expect(event('three')).rejects.toThrow(AuditUnavailableError);
    await expect(event('three')).rejects.toThrow('ENOENT');

    await mkdir(logs);
    await event('four');
    const text = await readFile(file, 'utf8');
    expect(text).toContain('"four"');
    expect(text).not.toContain('"three"');
    expect(
      text
        .trimEnd()
        .split('\n')
        .every((l) => l.startsWith('{')),
    ).toBe(true);
    await log.close();
  });

  it('refuses to open a file it cannot create', async () => {
    await expect(
      openAuditLog({ file: '/nonexistent-zsb-dir/audit.jsonl', writeTimeoutMs: 100 }),
    ).rejects.toThrow(/cannot open audit file .*ENOENT/);
  });
});

describe('bounded writes', () => {
  it('fails a write that does not finish in time', async () => {
    const stuck: AuditSink = { append: () => new Promise(() => undefined), close: async () => {} };
    const log = createAuditLog({ sink: stuck, hmacKey: KEY, writeTimeoutMs: 100 });
    const started = Date.now();
    await expect(
      log.revoked({ requestId: 'r', identity: IDENTITY, revoked: 0, failed: 0 }),
    ).rejects.toThrow('audit write timed out');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('turns any sink error into AuditUnavailableError without its message', async () => {
    const full: AuditSink = {
      append: async () => {
        throw Object.assign(new Error('no space left on /var/log/zsb'), { code: 'ENOSPC' });
      },
      close: async () => {},
    };
    const log = createAuditLog({ sink: full, hmacKey: KEY, writeTimeoutMs: 100 });
    const error = await log
      .revoked({ requestId: 'r', identity: IDENTITY, revoked: 0, failed: 0 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuditUnavailableError);
    expect((error as Error).message).toBe('audit write failed: ENOSPC');
  });
});
