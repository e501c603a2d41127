/**
 * A policy load worker that answers like the real one (it runs the real module's
 * answerLoadRequest) for its first `after` checks and then fails as told: exits, throws
 * (an uncaught error in the worker), never answers, or answers SLOW_CHECK_MS late
 * (right, but slowly, like a big set on a busy host). A new worker starts counting
 * again, so a test sees a crash and then the recovery.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { answerLoadRequest, type LoadRequest } from '../../src/policy/load-worker.js';

export type WorkerFault = 'exit' | 'throw' | 'hang' | 'slow';

/** How late a 'slow' worker answers a check. */
export const SLOW_CHECK_MS = 300;

const { fault, after } = workerData as { fault: WorkerFault; after: number };
let checks = 0;
const port = parentPort;
port?.on('message', (request: LoadRequest) => {
  if (request.kind === 'check' && ++checks > after) {
    if (fault === 'exit') process.exit(3);
    if (fault === 'throw') throw new Error('injected fault in the policy load worker');
    if (fault === 'slow') {
      const answer = answerLoadRequest(request);
      setTimeout(() => port.postMessage(answer), SLOW_CHECK_MS);
    }
    return;
  }
  port.postMessage(answerLoadRequest(request));
});
