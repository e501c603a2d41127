/**
 * The deployment suite (`npm run test:deploy`): the container image built from the
 * Dockerfile and run under podman, docker-compose.yml brought up with podman-compose, and
 * the Helm chart rendered and validated. A configuration of its own, so the default
 * `npm test` never starts it; it needs `npm run setup:deploy` (docs/deploy.md). The
 * whole-run canary scan runs here too, over every container log and command output.
 */
import { standaloneSuite } from '../support/standalone-suite.js';

// Image builds and containers share two cores: one file at a time. The image test runs its
// containers against the real OpenBao of openbao-global-setup.
// biome-ignore lint/style/noDefaultExport: vitest reads the default export of its config
export default standaloneSuite({
  name: 'deploy',
  testTimeout: 180000,
  hookTimeout: 600000,
  globalSetup: ['test/support/openbao-global-setup.ts'],
});
