/**
 * Asymmetric JWS algorithms accepted in DPoP proofs and client assertions.
 * Never "none" and never HMAC (RFC 9449 §4.3 check 5: "not none or an
 * identifier for a symmetric algorithm"; RFC 7523 §3 leaves the choice to the
 * server, and a shared-secret HMAC would defeat private_key_jwt).
 */
export const ASYMMETRIC_JWS_ALGORITHMS = ["ES256", "ES384", "EdDSA", "RS256", "PS256"];

/** Upper bound on a proof's or assertion's length, checked before any parsing. */
export const MAX_JWT_LENGTH = 8 * 1024;
