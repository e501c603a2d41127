/**
 * The real-Zuul end-to-end suite (`npm run test:zuul`): a configuration of its own, so the
 * default `npm test` never starts it. It needs `npm run setup:zuul` (Zuul from PyPI and
 * Debian packages; see docs/real-zuul-suite.md). The whole-run canary scan of the other
 * suites runs here too, over everything this suite captures.
 */
import { standaloneSuite } from '../support/standalone-suite.js';

// One Zuul for every case: the cases run in order, in one file.
// biome-ignore lint/style/noDefaultExport: vitest reads the default export of its config
export default standaloneSuite({ name: 'zuul', testTimeout: 180000, hookTimeout: 120000 });
