/**
 * Loading a policy directory without holding up the serving thread (issue #20, ADR
 * 0018). The first load, while no set serves yet, runs here in one piece; every reload
 * after it: the files are read here and parsed and checked by the load worker
 * (load-worker.ts); if they pass, the contributions of the files that changed come over
 * one by one and the new set is put together, compiled and indexed here in slices of
 * about a millisecond (time-slices.ts). Unchanged files keep their parts, so their
 * grants stay the same objects with their compiled matchers. The caller swaps the set
 * it gets in one assignment; until then the old set serves.
 *
 * Fails closed: a worker that throws, crashes, exits or does not answer in time gives a
 * rejected load (a problem naming what happened), and the next load starts a new worker.
 * `zsb policy check` and the other CLI commands keep the plain synchronous loadPolicyDir.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { preparePolicySet, preparePolicySetInSlices } from './decide.js';
import { readYamlDirectory } from './directory.js';
import { type FileTransfer, fromTransfer } from './file-transfer.js';
import { checkPolicyFiles, type FileParts, type LoadOptions, policySetOf } from './load.js';
import { LOAD_WORKER, type LoadAnswer, type LoadRequest } from './load-worker.js';
import { forgetParsedFiles, type SourceFile } from './source.js';
import { TimeSlices } from './time-slices.js';
import type { LoadResult } from './types.js';

export interface LoadWorkerOptions {
  /** The worker's module; tests point it at a faulty one. Default: load-worker. */
  readonly entry?: URL;
  readonly workerData?: unknown;
  /** How long one answer may take before the worker is stopped and the load rejected. */
  readonly timeoutMs?: number;
}

/** A first check of 10,000 grants takes about a second; a minute means something is wrong. */
const DEFAULT_TIMEOUT_MS = 60_000;

const OWN_ENTRY = new URL(
  import.meta.url.endsWith('.ts') ? './load-worker.ts' : './load-worker.js',
  import.meta.url,
);

function startWorker(entry: URL, workerData: unknown): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData });
  // From the TypeScript sources (tsx in development, vitest in tests) a worker has none of
  // tsx's hooks: it registers them before it imports its module.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href;
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(boot, { eval: true, workerData, execArgv: [] });
}

/** One worker, one request at a time (loads are queued by the policy store). */
class LoadThread {
  private worker: Worker | undefined;

  constructor(
    private readonly entry: URL,
    private readonly workerData: unknown,
    private readonly timeoutMs: number,
  ) {}

  private start(): Worker {
    const worker = startWorker(this.entry, this.workerData);
    // An idle worker does not keep the process alive (the `zsb rotate` command ends).
    worker.unref();
    // Without a listener an 'error' event would throw in the broker.
    worker.on('error', () => undefined);
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = undefined;
    });
    this.worker = worker;
    return worker;
  }

  request(message: LoadRequest): Promise<LoadAnswer> {
    const worker = this.worker ?? this.start();
    return new Promise((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('messageerror', onError);
        worker.off('error', onError);
        worker.off('exit', onExit);
        worker.unref();
      };
      const onMessage = (answer: LoadAnswer): void => {
        finish();
        if (answer.kind === 'failed') reject(new Error(answer.message));
        else resolve(answer);
      };
      const onError = (e: unknown): void => {
        finish();
        // A worker that threw is not trusted with the next load either.
        if (this.worker === worker) this.worker = undefined;
        void worker.terminate();
        reject(e instanceof Error ? e : new Error(String(e)));
      };
      const onExit = (code: number): void => {
        finish();
        reject(new Error(`the policy load worker stopped (exit code ${code})`));
      };
      const timer = setTimeout(() => {
        finish();
        if (this.worker === worker) this.worker = undefined;
        void worker.terminate();
        reject(new Error(`the policy load worker did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      worker.on('message', onMessage);
      worker.on('messageerror', onError);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.ref();
      worker.postMessage(message);
    });
  }
}

function sameText(a: SourceFile['text'], b: SourceFile['text']): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

function textOf(file: SourceFile): string {
  // The worker decoded it already (strict UTF-8): it is valid.
  return typeof file.text === 'string' ? file.text : new TextDecoder().decode(file.text);
}

export interface PolicyLoader {
  /** The directory's policy set, compiled and indexed, or every problem found. */
  load(): Promise<LoadResult>;
}

export function createPolicyLoader(
  dir: string,
  options: LoadOptions,
  workerOptions: LoadWorkerOptions = {},
): PolicyLoader {
  const thread = new LoadThread(
    workerOptions.entry ?? OWN_ENTRY,
    workerOptions.workerData ?? LOAD_WORKER,
    workerOptions.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  );
  /** The files of the last loaded set with their parts, by name. */
  let kept = new Map<string, { readonly text: SourceFile['text']; readonly parts: FileParts }>();

  /** A checked file's contribution, in parts small enough to copy within a slice. */
  async function fetchTransfer(index: number): Promise<FileTransfer> {
    let head: Omit<FileTransfer, 'grants'> | undefined;
    const grants: FileTransfer['grants'][number][] = [];
    let from: number | undefined = 0;
    while (from !== undefined) {
      const answer = await thread.request({ kind: 'file', index, from });
      if (answer.kind !== 'file') throw new Error(`unexpected answer '${answer.kind}'`);
      head ??= answer.head;
      for (const grant of answer.grants) grants.push(grant);
      from = answer.next;
    }
    if (head === undefined) throw new Error(`no contribution of file number ${index}`);
    return { ...head, grants };
  }

  /**
   * The first load, while no set serves (the broker's start, `zsb rotate`): nothing to
   * keep serving, so it runs here in one piece, as fast as a load can, without waiting
   * for a worker to start. Its files' parts are kept for the reloads.
   */
  function loadHere(contents: Awaited<ReturnType<typeof readYamlDirectory>>): LoadResult {
    const { result, contributions } = checkPolicyFiles(contents.files, options);
    const problems = [...contents.problems, ...(result.ok ? [] : result.problems)];
    if (!result.ok || problems.length > 0) return { ok: false, problems: Object.freeze(problems) };
    preparePolicySet(result.set);
    kept = new Map();
    for (const [index, file] of contents.files.entries()) {
      const parts = contributions[index];
      if (parts !== undefined) kept.set(file.name, { text: file.text, parts });
    }
    // Reloads are parsed in the worker: this thread's parsed files would only hold memory.
    forgetParsedFiles();
    return result;
  }

  async function load(): Promise<LoadResult> {
    const contents = await readYamlDirectory(dir, 'policy directory');
    if (kept.size === 0) return loadHere(contents);
    const checked = await thread.request({ kind: 'check', files: contents.files, options });
    const problems = [
      ...contents.problems,
      ...(checked.kind === 'checked' ? checked.problems : []),
    ];
    if (problems.length > 0) return { ok: false, problems: Object.freeze(problems) };
    const slices = new TimeSlices();
    const parts: FileParts[] = [];
    const next = new Map<string, { text: SourceFile['text']; parts: FileParts }>();
    for (const [index, file] of contents.files.entries()) {
      let entry = kept.get(file.name);
      if (entry === undefined || !sameText(entry.text, file.text)) {
        const transfer = await fetchTransfer(index);
        slices.resume();
        entry = {
          text: file.text,
          parts: await fromTransfer(file.name, textOf(file), transfer, slices),
        };
        await slices.pause();
      }
      parts.push(entry.parts);
      next.set(file.name, entry);
    }
    const set = policySetOf(
      contents.files.map((f) => f.name),
      parts,
    );
    await preparePolicySetInSlices(set, slices);
    kept = next;
    return { ok: true, set };
  }

  return {
    async load() {
      try {
        return await load();
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        return {
          ok: false,
          problems: [
            { file: dir, line: 0, column: 0, message: `policy files not checked: ${message}` },
          ],
        };
      }
    },
  };
}
