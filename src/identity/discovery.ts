/**
 * Where an issuer's key set lives when the configuration does not say (ADR 0010): zuul-web's
 * OpenID discovery document at `{root}/.well-known/openid-configuration` (at the root, not
 * under /oidc) names it in `jwks_uri`. The routes the broker used to default to are
 * backwards-compat routes that Zuul removes after Zuul 15; discovery is the route Zuul keeps.
 *
 * The discovered URL gets the configuration's rules for URLs (https, plain http only to
 * loopback, no credentials) and must stay on the issuer's own origin: the discovery
 * document is trusted to name a path, not to move the issuer's trust to another host.
 */
import { IssuerConfigSchema } from '../config/schema.js';
import {
  type DocumentFetchOptions,
  fetchIssuerDocument,
  IssuerDocumentError,
  shownUrl,
} from './issuer-document.js';

export function discoveryUrlOf(issuer: string): string {
  return `${issuer}/.well-known/openid-configuration`;
}

/** The same check the configuration applies to a configured `jwksUrl`. */
function isAcceptableUrl(url: string): boolean {
  return IssuerConfigSchema.shape.jwksUrl.safeParse(url).success;
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** Fetches the issuer's discovery document and returns its validated `jwks_uri`. */
export async function discoverKeySetUrl(
  issuer: string,
  options: DocumentFetchOptions,
): Promise<string> {
  const url = discoveryUrlOf(issuer);
  const shown = shownUrl(url);
  const { json, answer } = await fetchIssuerDocument(url, options);
  const jwksUri =
    typeof json === 'object' && json !== null && !Array.isArray(json)
      ? (json as Record<string, unknown>).jwks_uri
      : undefined;
  if (typeof jwksUri !== 'string' || jwksUri.length === 0 || jwksUri.length > 2048) {
    throw new IssuerDocumentError(
      `not a discovery document (no jwks_uri) from ${shown} (${answer})`,
      'invalid',
    );
  }
  if (!isAcceptableUrl(jwksUri)) {
    throw new IssuerDocumentError(
      `discovery document from ${shown} names a jwks_uri that is not https (plain http only to loopback) or carries credentials`,
      'invalid',
    );
  }
  if (originOf(jwksUri) !== originOf(issuer)) {
    throw new IssuerDocumentError(
      `discovery document from ${shown} names a jwks_uri on another host (${shownUrl(jwksUri)}); configure jwksUrl to use it`,
      'invalid',
    );
  }
  return jwksUri;
}
