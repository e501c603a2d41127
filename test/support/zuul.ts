/**
 * Test-side access to the dev Zuul issuer: fast keys, a fake clock, and issuer
 * configuration built through the real config schema so defaults match production.
 */
import { type IssuerConfig, IssuerConfigSchema } from '../../src/config/schema.js';
import { ZuulIssuer, type ZuulIssuerOptions } from '../../src/dev/zuul-issuer.js';

export type {
  MintOptions,
  ZuulClaims,
  ZuulIssuerMode,
  ZuulIssuerOptions,
  ZuulSigningKeyExport,
} from '../../src/dev/zuul-issuer.js';
export { DEFAULT_ZUUL_TOKEN, ZuulIssuer } from '../../src/dev/zuul-issuer.js';

/** `iat` of the realistic token in zuul-token.md. */
export const ZUUL_EPOCH_SECONDS = 1764100000;

export interface FakeClock {
  /** Epoch milliseconds. */
  now(): number;
  advance(seconds: number): void;
}

export function fakeClock(startMs = ZUUL_EPOCH_SECONDS * 1000): FakeClock {
  let current = startMs;
  return {
    now: () => current,
    advance: (seconds) => {
      current += seconds * 1000;
    },
  };
}

/** A loopback issuer with a 2048-bit key: Zuul uses 4096, which would make tests slow. */
export function startZuulIssuer(options: ZuulIssuerOptions = {}): Promise<ZuulIssuer> {
  return ZuulIssuer.start({ modulusLength: 2048, ...options });
}

type IssuerConfigInput = Omit<Partial<IssuerConfig>, 'jwks'> & {
  jwks?: Partial<IssuerConfig['jwks']>;
};

/** Broker configuration for one issuer: production defaults unless overridden. */
export function issuerConfigFor(
  issuer: ZuulIssuer,
  overrides: IssuerConfigInput = {},
): IssuerConfig {
  const { jwks, ...rest } = overrides;
  const defaults = IssuerConfigSchema.parse({
    issuer: issuer.issuer,
    audience: 'https://secrets.example.org',
  });
  return IssuerConfigSchema.parse({ ...defaults, ...rest, jwks: { ...defaults.jwks, ...jwks } });
}
