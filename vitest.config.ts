import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Root project: runs once per run, whichever projects run (the whole-run canary scan).
    globalSetup: ['test/support/canary-global-setup.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          setupFiles: ['test/support/canary-setup.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          setupFiles: ['test/support/canary-setup.ts'],
          globalSetup: [
            'test/support/openbao-global-setup.ts',
            'test/support/postgres-global-setup.ts',
          ],
          testTimeout: 30000,
          hookTimeout: 60000,
        },
      },
    ],
  },
});
