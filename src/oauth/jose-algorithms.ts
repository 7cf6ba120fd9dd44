/**
 * Asymmetric JWS algorithms accepted in DPoP proofs and client assertions.
 * Never "none" and never HMAC (RFC 9449 §4.3 check 5: "not none or an
 * identifier for a symmetric algorithm"; RFC 7523 §3 leaves the choice to the
 * server, and a shared-secret HMAC would defeat private_key_jwt).
 * `Ed25519` is RFC 9864's fully-specified name for what `EdDSA` means with an
 * Ed25519 key (openid-client and oauth4webapi sign with it); both are
 * accepted and advertised (SPEC §4).
 */
export const ASYMMETRIC_JWS_ALGORITHMS = ["ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256"];

/**
 * The JWS names of one algorithm: RFC 9864 §2 deprecates the polymorphic
 * `EdDSA` in favour of `Ed25519`, the only EdDSA curve accepted here, so a key
 * registered as one verifies signatures made under the other name.
 */
export function jwsAlgorithmNames(alg: string): readonly string[] {
  return alg === "EdDSA" || alg === "Ed25519" ? ["EdDSA", "Ed25519"] : [alg];
}

/** Upper bound on a proof's or assertion's length, checked before any parsing. */
export const MAX_JWT_LENGTH = 8 * 1024;
