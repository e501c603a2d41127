/**
 * The whole-run canary scan can fail: planted canaries (a registered secret value, the
 * canary prefix, a token signed by the test issuer, a value only found JSON-escaped, a value
 * split across chunks of a child's output) are found with file, line and source, and the
 * report never carries the canary itself. Everything here writes into its own directory,
 * never into the run's.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { ZuulIssuer } from '../../src/dev/zuul-issuer.js';
import { createLogger } from '../../src/main.js';
import { LogCapture } from '../support/app.js';
import {
  CANARY_PREFIX,
  canaryValue,
  captureStream,
  captureText,
  registerCanary,
  registerSecretData,
} from '../support/canary.js';
import { runScan } from '../support/canary-global-setup.js';
import { LOG_DIR_ENV, readCanaries, scanCaptures } from '../support/canary-scan.js';

let issuer: ZuulIssuer;
let runDir: string | undefined;
let dir: string;

beforeAll(async () => {
  issuer = await ZuulIssuer.start({ modulusLength: 2048 });
});
afterAll(async () => issuer.close());

// Capture and register into a directory of this test only: the run's own scan must not see
// the planted canaries.
beforeEach(async () => {
  runDir = process.env[LOG_DIR_ENV];
  dir = await mkdtemp(path.join(tmpdir(), 'zsb-canary-scan-'));
  process.env[LOG_DIR_ENV] = dir;
});
afterEach(async () => {
  if (runDir === undefined) delete process.env[LOG_DIR_ENV];
  else process.env[LOG_DIR_ENV] = runDir;
  await rm(dir, { recursive: true, force: true });
});

function scan() {
  return scanCaptures(dir, readCanaries(dir));
}

it('finds a registered secret value in a captured log line, and reports it without the value', async () => {
  const secret = `s3cr3t-${Date.now()}-value`;
  registerSecretData({ username: 'ci-user-name', password: secret });
  captureText('log', '{"msg":"request","status":200}\n{"msg":"request","status":401}');
  expect(scan()).toEqual({ hits: [], lines: 2 });

  const logs = new LogCapture();
  createLogger('info', logs).info({ note: `oops ${secret}` }, 'planted leak');
  const { hits, lines } = scan();
  expect(lines).toBe(3);
  expect(hits).toHaveLength(1);
  expect(hits[0]).toMatchObject({
    line: 3,
    kind: 'registered canary',
    source: 'log of test/unit/canary-scan.test.ts',
  });
  expect(hits[0]?.file).toMatch(/^capture-\d+-\d+\.jsonl$/);

  const report = path.join(dir, 'report.json');
  const result = await runScan(dir, report);
  expect(result.hits).toHaveLength(1);
  expect(result.message).toContain(`${hits[0]?.file}:3: registered canary in log of`);
  expect(result.message).not.toContain(secret);
  expect(await readFile(report, 'utf8')).not.toContain(secret);
});

it('counts seeded values only in lines of the test file that seeded them, tokens everywhere', async () => {
  const word = 'scs/github.com/org/repo/deploy';
  registerSecretData({ v: word });
  const token = issuer.mint();
  const signature = token.split('.')[2] ?? '';
  const other = (text: string) =>
    `${JSON.stringify({ kind: 'log', file: 'test/integration/other.test.ts', text })}\n`;
  await writeFile(path.join(dir, 'capture-other.jsonl'), other(`path ${word}`) + other(signature));
  expect(scan().hits).toMatchObject([
    { file: 'capture-other.jsonl', line: 2, source: 'log of test/integration/other.test.ts' },
  ]);
  captureText('log', `path ${word}`);
  expect(
    scan()
      .hits.map((h) => h.source)
      .sort(),
  ).toEqual(['log of test/integration/other.test.ts', 'log of test/unit/canary-scan.test.ts']);
});

it('does not register identifier fields or short values', () => {
  registerSecretData({ username: 'a-long-user-name', host: 'db.example.org', pin: '1234' });
  captureText('log', 'user a-long-user-name at db.example.org, pin 1234');
  expect(scan().hits).toEqual([]);
});

it('finds any value made with canaryValue by its prefix, registered or not', () => {
  const value = canaryValue('planted');
  expect(value.startsWith(CANARY_PREFIX)).toBe(true);
  captureText('audit file', `{"event":"secret.issued","x":"${CANARY_PREFIX}never-registered"}`);
  expect(scan().hits).toMatchObject([{ line: 1, kind: 'canary prefix' }]);
});

it('registers every token the test issuer signs, and finds its signature or payload', () => {
  const token = issuer.mint();
  const [, payload = '', signature = ''] = token.split('.');
  captureText('child stderr', `verifying ${signature.slice(0, 40)}`);
  expect(scan().hits).toEqual([]);
  captureText('child stderr', `bearer ${signature}`);
  captureText('child stdout', `claims ${payload}`);
  expect(scan().hits.map((h) => [h.line, h.source])).toEqual([
    [2, 'child stderr of test/unit/canary-scan.test.ts'],
    [3, 'child stdout of test/unit/canary-scan.test.ts'],
  ]);
});

it('finds a value that only appears JSON-escaped in a log line', () => {
  const value = 'line one "quoted"\nline two ✓ zz';
  registerCanary(value);
  captureText('log', JSON.stringify({ msg: 'leak', v: value }));
  expect(scan().hits).toHaveLength(1);
});

it('keeps lines whole across chunks of a child process stream', async () => {
  const secret = `split-secret-${Date.now()}`;
  registerCanary(secret);
  const stream = new PassThrough();
  captureStream('child stdout', stream);
  stream.write(`{"msg":"a"}\n{"msg":"${secret.slice(0, 9)}`);
  stream.write(`${secret.slice(9)}"}\n{"msg":"tail`);
  stream.end('"}');
  await new Promise((resolve) => stream.once('end', resolve));
  expect(scan()).toMatchObject({ lines: 3, hits: [{ line: 2 }] });
});

it('captures and registers nothing without a run directory', () => {
  delete process.env[LOG_DIR_ENV];
  registerCanary('would-be-canary-value');
  captureText('log', 'would-be-canary-value');
  process.env[LOG_DIR_ENV] = dir;
  expect(scan()).toEqual({ hits: [], lines: 0 });
});
