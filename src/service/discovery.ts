import { CLIENT_AUTH_METHODS } from "../oauth/client-registry.js";
import { ASYMMETRIC_JWS_ALGORITHMS } from "../oauth/jose-algorithms.js";
import type { SigningKey } from "../tokens/signing-keys.js";

/** RFC 7517 §5: every configured key is published, so tokens survive a key rotation. */
export function buildJwks(keys: readonly SigningKey[]): { keys: Record<string, unknown>[] } {
  return { keys: keys.map((k) => k.publicJwk) };
}

/**
 * OpenID Connect Discovery 1.0 §3 / RFC 8414 §2 metadata, limited to what this
 * service does. `grantTypes` comes from the grant table, so a new grant is
 * advertised by being registered.
 */
export function buildDiscoveryDocument(
  issuerUrl: string,
  keys: readonly SigningKey[],
  grantTypes: readonly string[],
) {
  return {
    issuer: issuerUrl,
    token_endpoint: new URL("oauth/token", issuerUrl).href,
    // RFC 8414 §2 (RFC 7009 revocation); its clients authenticate as at the token endpoint.
    revocation_endpoint: new URL("oauth/revoke", issuerUrl).href,
    revocation_endpoint_auth_methods_supported: [...CLIENT_AUTH_METHODS],
    jwks_uri: new URL(".well-known/jwks.json", issuerUrl).href,
    grant_types_supported: [...grantTypes],
    token_endpoint_auth_methods_supported: [
      "client_secret_post",
      "client_secret_basic",
      "private_key_jwt",
      "none",
    ],
    // EdDSA and its RFC 9864 name Ed25519 side by side (jose-algorithms.ts).
    token_endpoint_auth_signing_alg_values_supported: ASYMMETRIC_JWS_ALGORITHMS,
    response_types_supported: ["token"],
    subject_types_supported: ["public"],
    // Exactly the keys' own names: an ID token's header names its key's `alg`,
    // which relying parties match against the JWKS entry (a key published as
    // EdDSA cannot be offered as Ed25519). SIGNING_KEYS_FILE takes either name.
    id_token_signing_alg_values_supported: [...new Set(keys.map((k) => k.alg))],
    // offline_access asks for a refresh token (OpenID Connect Core §11).
    scopes_supported: ["openid", "offline_access"],
    dpop_signing_alg_values_supported: ASYMMETRIC_JWS_ALGORITHMS,
  };
}
