/**
 * The reach report's browser suite (`npm run test:report`): a configuration of its own, so
 * the default `npm test` never needs Chromium. It needs `npm run setup:browser` (Debian's
 * chromium). The whole-run canary scan runs here too, over the CLI output it captures.
 */
import { standaloneSuite } from '../support/standalone-suite.js';

// One browser for the file; its cases share the generated reports.
// biome-ignore lint/style/noDefaultExport: vitest reads the default export of its config
export default standaloneSuite({ name: 'report', testTimeout: 60000, hookTimeout: 120000 });
