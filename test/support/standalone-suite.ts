/**
 * The vitest configuration of a suite of its own (`test/<name>/`, its own npm script, never
 * part of `npm test`): one file at a time, and the whole-run canary scan of the other
 * suites over everything it captures.
 */
import path from 'node:path';
import { defineConfig } from 'vitest/config';

const root = path.resolve(import.meta.dirname, '..', '..');

export function standaloneSuite(suite: {
  readonly name: string;
  readonly testTimeout: number;
  readonly hookTimeout: number;
  /** Per-project global set-up besides the canary scan's (e.g. a shared OpenBao). */
  readonly globalSetup?: string[];
}) {
  const { name, globalSetup, ...timeouts } = suite;
  return defineConfig({
    test: {
      root,
      globalSetup: ['test/support/canary-global-setup.ts'],
      projects: [
        {
          test: {
            name,
            root,
            include: [`test/${name}/**/*.test.ts`],
            setupFiles: ['test/support/canary-setup.ts'],
            ...(globalSetup === undefined ? {} : { globalSetup }),
            fileParallelism: false,
            ...timeouts,
          },
        },
      ],
    },
  });
}
