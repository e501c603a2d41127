/**
 * The reach report's browser suite (`npm run test:report`): a configuration of its own, so
 * the default `npm test` never needs Chromium. It needs `npm run setup:browser` (Debian's
 * chromium). The whole-run canary scan runs here too, over the CLI output it captures.
 */
import path from 'node:path';
import { defineConfig } from 'vitest/config';

const root = path.resolve(import.meta.dirname, '..', '..');

// biome-ignore lint/style/noDefaultExport: vitest reads the default export of its config
export default defineConfig({
  test: {
    root,
    globalSetup: ['test/support/canary-global-setup.ts'],
    projects: [
      {
        test: {
          name: 'report',
          root,
          include: ['test/report/**/*.test.ts'],
          setupFiles: ['test/support/canary-setup.ts'],
          // One browser for the file; its cases share the generated reports.
          fileParallelism: false,
          testTimeout: 60000,
          hookTimeout: 120000,
        },
      },
    ],
  },
});
