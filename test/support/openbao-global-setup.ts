/**
 * vitest globalSetup for integration tests: one real OpenBao for the whole run.
 * Order: BAO_ADDR + BAO_TOKEN from the environment; else `bao server -dev` from the
 * project's pinned binary; else a testcontainers OpenBao when Docker answers; else fail
 * loudly. There is no fake: integration tests never run without a real server.
 */
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import {
  BaoNotFoundError,
  type DevOpenBao,
  startDevOpenBao,
} from '../../src/dev/openbao-dev-server.js';
import { createOpenBaoClient } from '../../src/openbao/client.js';

declare module 'vitest' {
  export interface ProvidedContext {
    openbaoAddress: string;
    openbaoToken: string;
    openbaoVersion: string;
  }
}

function dockerAvailable(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

async function startWithTestcontainers(): Promise<{
  address: string;
  token: string;
  stop: () => Promise<void>;
}> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const token = `zsbtest${Date.now()}`;
  const container = await new GenericContainer('openbao/openbao:2.7.2')
    .withEnvironment({ BAO_DEV_ROOT_TOKEN_ID: token, BAO_DEV_LISTEN_ADDRESS: '0.0.0.0:8200' })
    .withExposedPorts(8200)
    .withWaitStrategy(Wait.forHttp('/v1/sys/health', 8200).forStatusCode(200))
    .start();
  return {
    address: `http://${container.getHost()}:${container.getMappedPort(8200)}`,
    token,
    stop: async () => {
      await container.stop();
    },
  };
}

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  let address = process.env.BAO_ADDR;
  let token = process.env.BAO_TOKEN;
  let stop: () => Promise<void> = async () => {};
  let origin: string;
  if (address && token) {
    origin = 'BAO_ADDR';
  } else {
    let dev: DevOpenBao | undefined;
    try {
      dev = await startDevOpenBao();
    } catch (error) {
      if (!(error instanceof BaoNotFoundError)) throw error;
      if (!dockerAvailable()) {
        throw new Error(
          `integration tests need a real OpenBao and none can start: ${error.message}; ` +
            'or set BAO_ADDR and BAO_TOKEN, or make Docker available',
        );
      }
    }
    if (dev) {
      address = dev.address;
      token = dev.rootToken;
      stop = dev.stop;
      origin = `bao server -dev (${dev.binary})`;
    } else {
      const started = await startWithTestcontainers();
      address = started.address;
      token = started.token;
      stop = started.stop;
      origin = 'testcontainers openbao/openbao:2.7.2';
    }
  }
  const rootToken = token;
  const health = await createOpenBaoClient({
    addresses: [address],
    timeoutMs: 5000,
    maxConnections: 2,
    token: () => rootToken,
  }).health();
  if (health.status !== 'ok') {
    await stop();
    throw new Error(`OpenBao at ${address} is not usable: ${health.status}`);
  }
  process.stdout.write(
    `\nIntegration tests run against OpenBao ${health.version} at ${address} from ${origin}\n\n`,
  );
  project.provide('openbaoAddress', address);
  project.provide('openbaoToken', rootToken);
  project.provide('openbaoVersion', health.version);
  return stop;
}
