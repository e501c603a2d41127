/**
 * The policy load worker (ADR 0018): parses and checks policy files on a thread of its
 * own, so that a reload does not hold up the requests the broker serves meanwhile. The
 * parse and check caches of source.ts and load.ts live here, in this thread's copy of
 * those modules, so a reload parses and checks only the files that changed. A checked
 * set's contributions are handed over one file per request (file-transfer.ts), which
 * keeps each message's copy on the serving thread short.
 */
import { setPriority } from 'node:os';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { type FileTransfer, toTransfer } from './file-transfer.js';
import { checkPolicyFiles, type FileContribution, type LoadOptions } from './load.js';
import type { SourceFile } from './source.js';
import type { PolicyProblem } from './types.js';

/** The workerData that makes this module serve requests (a test's faulty worker imports it). */
export const LOAD_WORKER = 'zsb-policy-load-worker';

export type LoadRequest =
  | {
      readonly kind: 'check';
      readonly files: readonly SourceFile[];
      readonly options: LoadOptions;
    }
  /** Part of the contribution of `files[index]` of the last check, which passed. */
  | { readonly kind: 'file'; readonly index: number; readonly from: number };

export type LoadAnswer =
  /** No problems: the set is valid, its files can be fetched. */
  | { readonly kind: 'checked'; readonly problems: readonly PolicyProblem[] }
  | {
      readonly kind: 'file';
      /** With the first part only: everything but the grants. */
      readonly head: Omit<FileTransfer, 'grants'> | undefined;
      readonly grants: FileTransfer['grants'];
      /** Where the next part starts; undefined after the last. */
      readonly next: number | undefined;
    }
  | { readonly kind: 'failed'; readonly message: string };

/**
 * Grants per message. A message is copied on the serving thread in one piece, about
 * 5–15 µs per grant on a shared machine: 64 keep it under a millisecond (ADR 0018).
 */
export const GRANTS_PER_MESSAGE = 64;

let lastChecked: readonly FileContribution[] = [];
let handing: { readonly index: number; readonly transfer: FileTransfer } | undefined;

export function answerLoadRequest(request: LoadRequest): LoadAnswer {
  try {
    if (request.kind === 'check') {
      const { result, contributions } = checkPolicyFiles(request.files, request.options);
      lastChecked = result.ok ? contributions : [];
      handing = undefined;
      // A problem's line and column were read when it was made: it clones as plain data.
      return { kind: 'checked', problems: result.ok ? [] : result.problems };
    }
    const contribution = lastChecked[request.index];
    if (contribution === undefined) {
      return { kind: 'failed', message: `no checked file number ${request.index}` };
    }
    if (handing?.index !== request.index) {
      handing = { index: request.index, transfer: toTransfer(contribution) };
    }
    const { grants, ...head } = handing.transfer;
    const end = request.from + GRANTS_PER_MESSAGE;
    return {
      kind: 'file',
      head: request.from === 0 ? head : undefined,
      grants: grants.slice(request.from, end),
      next: end < grants.length ? end : undefined,
    };
  } catch (e) {
    return { kind: 'failed', message: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * Nice 10 for this thread only (Linux: a thread's own nice value): where the serving
 * thread and this one both want the CPU, the serving thread gets about nine tenths of
 * it, while a busy host still leaves the load its share.
 */
export const LOAD_WORKER_NICE = 10;

if (!isMainThread && parentPort !== null && workerData === LOAD_WORKER) {
  try {
    setPriority(LOAD_WORKER_NICE);
  } catch {
    // Not permitted here (some sandboxes): the load only competes more with serving.
  }
  const port = parentPort;
  port.on('message', (request: LoadRequest) => port.postMessage(answerLoadRequest(request)));
}
