/**
 * The deployment suite (`npm run test:deploy`): the container image built from the
 * Dockerfile and run under podman, docker-compose.yml brought up with podman-compose, and
 * the Helm chart rendered and validated. A configuration of its own, so the default
 * `npm test` never starts it; it needs `npm run setup:deploy` (docs/deploy.md). The
 * whole-run canary scan runs here too, over every container log and command output.
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
          name: 'deploy',
          root,
          include: ['test/deploy/**/*.test.ts'],
          setupFiles: ['test/support/canary-setup.ts'],
          // The image test runs its containers against this real OpenBao.
          globalSetup: ['test/support/openbao-global-setup.ts'],
          // Image builds and containers share two cores: one file at a time.
          fileParallelism: false,
          testTimeout: 180000,
          hookTimeout: 600000,
        },
      },
    ],
  },
});
