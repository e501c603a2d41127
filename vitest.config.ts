import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
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
