import { defineConfig } from 'vitest/config';

const clusterProject = {
  test: {
    name: 'cluster',
    include: ['test/cluster/**/*.test.ts'],
    setupFiles: ['test/support/canary-setup.ts'],
    globalSetup: ['test/support/postgres-global-setup.ts'],
    // Each file runs three `bao server` processes; two cores hold one cluster at a time.
    fileParallelism: false,
    testTimeout: 120000,
    hookTimeout: 120000,
  },
};

const backupProject = {
  test: {
    name: 'backup',
    include: ['test/integration/backup*.test.ts'],
    setupFiles: ['test/support/canary-setup.ts'],
    // Each file starts raft nodes and scratch restores: one file at a time on two cores.
    fileParallelism: false,
    testTimeout: 120000,
    hookTimeout: 120000,
  },
};

// Credential rotation against real OpenStack Keystone and a real docker-registry
// (docs/rotation.md): `npm run test:credentials` (ZSB_CREDENTIAL_TESTS=1) after
// `npm run setup:keystone`. Each file starts its own Keystone: one file at a time.
const credentialsProject = {
  test: {
    name: 'credentials',
    include: ['test/credentials/**/*.test.ts'],
    setupFiles: ['test/support/canary-setup.ts'],
    globalSetup: ['test/support/openbao-global-setup.ts'],
    fileParallelism: false,
    testTimeout: 60000,
    hookTimeout: 120000,
  },
};

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
          // Raft snapshot suites run in the `backup` project (they start their own raft nodes).
          exclude: ['test/integration/backup*.test.ts'],
          setupFiles: ['test/support/canary-setup.ts'],
          globalSetup: [
            'test/support/openbao-global-setup.ts',
            'test/support/postgres-global-setup.ts',
          ],
          testTimeout: 30000,
          hookTimeout: 60000,
        },
      },
      // A real 3-node OpenBao raft cluster per file (test/support/raft-cluster.ts): only in
      // `npm run test:cluster` (ZSB_CLUSTER_TESTS=1), never in the default `npm test` run.
      ...(process.env.ZSB_CLUSTER_TESTS ? [clusterProject] : []),
      // Backups (docs/backup-and-restore.md): single raft nodes with the static seal, started
      // per file; several minutes on two cores, so only with ZSB_BACKUP_TESTS=1
      // (`npm run test:backup`).
      ...(process.env.ZSB_BACKUP_TESTS ? [backupProject] : []),
      ...(process.env.ZSB_CREDENTIAL_TESTS ? [credentialsProject] : []),
    ],
  },
});
