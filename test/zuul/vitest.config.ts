/**
 * The real-Zuul end-to-end suite (`npm run test:zuul`): a configuration of its own, so the
 * default `npm test` never starts it. It needs `npm run setup:zuul` (Zuul from PyPI and
 * Debian packages; see docs/real-zuul-suite.md). The whole-run canary scan of the other
 * suites runs here too, over everything this suite captures.
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
          name: 'zuul',
          root,
          include: ['test/zuul/**/*.test.ts'],
          setupFiles: ['test/support/canary-setup.ts'],
          // One Zuul for every case: the cases run in order, in one file.
          fileParallelism: false,
          testTimeout: 180000,
          hookTimeout: 120000,
        },
      },
    ],
  },
});
