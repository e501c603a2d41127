/** The problems `parseConfig` names for a configuration document; empty when it is valid. */
import { ConfigError, parseConfig } from '../../src/config/load.js';

export function configProblems(document: unknown): readonly string[] {
  try {
    parseConfig(document);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

/**
 * The configuration document of a broker on a free loopback port with one issuer, OpenBao
 * at `openbao` with the token in `tokenFile`, the policies in `policies`, not watched.
 * `openbaoSettings` adds to the `openbao` section; callers spread their own top-level keys
 * over the result.
 */
export function tokenBrokerDocument(options: {
  readonly issuer: string;
  readonly audience: string;
  readonly openbao: string;
  readonly tokenFile: string;
  readonly policies: string;
  readonly openbaoSettings?: Readonly<Record<string, unknown>>;
}): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    issuers: [{ issuer: options.issuer, audience: options.audience }],
    openbao: {
      address: options.openbao,
      auth: { method: 'token', tokenFile: options.tokenFile },
      ...options.openbaoSettings,
    },
    policies: options.policies,
    watchPolicies: false,
  };
}
