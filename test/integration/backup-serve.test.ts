/**
 * Backups scheduled inside `zsb serve`: two broker instances with the scheduler on, in front
 * of one real raft OpenBao, share one backup record. Exactly one of them takes the due
 * backup; both then report its time in /metrics; the run is audited with trigger
 * `schedule`; jobs are served meanwhile.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { createLogger, type RunningBroker, startBroker } from '../../src/main.js';
import { LogCapture } from '../support/app.js';
import {
  brokerTokenFile,
  type RaftSource,
  startRaftSource,
  writeSealKey,
} from '../support/backup-cluster.js';
import { canaryValue, registerSecretData } from '../support/canary.js';
import { brokerCall, until } from '../support/http.js';
import { cloudsPolicy } from '../support/kv-broker.js';

const AUDIENCE = 'https://secrets.example.org';
const prefix = `serve-${Date.now().toString(36)}`;
let dir: string;
let source: RaftSource;
let issuer: ZuulIssuer;
const brokers: RunningBroker[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-backup-serve-'));
  await Promise.all(['policies', 'seal', 'backups'].map((d) => mkdir(path.join(dir, d))));
  const sealKey = await writeSealKey(path.join(dir, 'seal', 'k1.key'));
  source = await startRaftSource({ dir: path.join(dir, 'source'), sealKeyFile: sealKey });
  await brokerTokenFile(source, prefix, path.join(dir, 'token'));
  await writeFile(path.join(dir, 'policies', 'p.yaml'), cloudsPolicy(prefix, 'serve'));
  issuer = await ZuulIssuer.start({ modulusLength: 2048 });
  const config = parseConfig({
    listen: { host: '127.0.0.1', port: 0 },
    issuers: [{ issuer: issuer.issuer, audience: AUDIENCE }],
    openbao: {
      address: source.address,
      auth: { method: 'token', tokenFile: path.join(dir, 'token') },
    },
    policies: path.join(dir, 'policies'),
    watchPolicies: false,
    rotation: { enabled: false },
    audit: { file: path.join(dir, 'audit.jsonl') },
    backup: {
      directory: path.join(dir, 'backups'),
      every: '1h',
      checkIntervalSeconds: 1,
      verify: { sealKeyFile: sealKey, sealKeyId: 'k1', timeoutSeconds: 60 },
    },
  });
  const logs = new LogCapture();
  for (let i = 0; i < 2; i++) {
    brokers.push(await startBroker(config, { logger: createLogger('info', logs) }));
  }
}, 60000);

afterAll(async () => {
  for (const broker of brokers) await broker.close();
  await issuer?.close();
  await source?.node.stop();
  await rm(dir, { recursive: true, force: true });
});

const metricsOf = async (broker: RunningBroker) => (await fetch(`${broker.url}/metrics`)).text();

describe('backups scheduled inside zsb serve', () => {
  it('one of two instances takes the due backup; both report it; jobs are served meanwhile', async () => {
    const secret = { username: 'ci', password: canaryValue('serve') };
    registerSecretData(secret);
    await source.admin.kvWrite('secret', `${prefix}/clouds`, secret);
    const fetched = await brokerCall(brokers[0]?.url ?? '', 'POST', '/v1/fetch', issuer.mint(), {
      secrets: ['clouds'],
    });
    expect(fetched.status).toBe(200);

    await until(async () => {
      const metrics = await Promise.all(brokers.map(metricsOf));
      return metrics.every((m) => /zsb_backup_last_verified_timestamp_seconds \d{10}/.test(m));
    }, 60000);
    // A few more ticks: nothing else is due for an hour, and nobody takes a second one.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const snapshots = (await readdir(path.join(dir, 'backups'))).filter((n) => n.endsWith('.snap'));
    expect(snapshots).toHaveLength(1);
    const metrics = await Promise.all(brokers.map(metricsOf));
    const taker = metrics.filter((m) => /zsb_backup_snapshot_bytes [1-9]/.test(m));
    expect(taker).toHaveLength(1);
    for (const m of metrics) expect(m).toMatch(/zsb_backup_failures_total\{stage="lock"\} 0/);
    const audit = await readFile(path.join(dir, 'audit.jsonl'), 'utf8');
    const events = audit
      .split('\n')
      .filter((line) => line.includes('"backup.snapshot"'))
      .map((line) => JSON.parse(line) as { outcome: string; trigger: string; file: string });
    expect(events).toEqual([
      expect.objectContaining({ outcome: 'verified', trigger: 'schedule', file: snapshots[0] }),
    ]);
  }, 90000);
});
