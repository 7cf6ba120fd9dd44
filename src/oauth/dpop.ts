import { createHash } from "node:crypto";
import type { Logger } from "../observability/logger.js";
import type { ProofMark } from "../store/store.js";
import { isCompactJws } from "./compact-jws.js";
import type { DpopNonces } from "./dpop-nonce.js";
import { createEmbeddedJwkJwsVerifier, type JwsFailure } from "./embedded-jwk-jws.js";
import { ASYMMETRIC_JWS_ALGORITHMS, MAX_JWT_LENGTH } from "./jose-algorithms.js";
import { oauthErrors } from "./oauth-error.js";

export interface DpopOptions {
  /** ± seconds a proof's `iat` may differ from the server clock (docs/api.md: 60). */
  iatSkewSeconds: number;
  /** RFC 9449 §8: demand a fresh server nonce in every proof. */
  requireNonce: boolean;
}

export interface DpopVerifier {
  /**
   * RFC 9449 §4.3, point by point. undefined when no proof was sent; the
   * RFC 7638 thumbprint of the proof key and the proof's single-use mark
   * when it is valid; throws row 11 (`invalid_dpop_proof`) or
   * `use_dpop_nonce` otherwise. Check 12 (jti used once) is completed by the
   * grant, which records the mark in its first atomic store step
   * (Store.beginVerify): no extra round trip.
   */
  verify(
    header: string | string[] | undefined,
    target: DpopTarget,
    nowMs: number,
  ): Promise<ValidDpopProof | undefined>;
  /** The nonce to send in `DPoP-Nonce` (nonce mode only). */
  nonceFor(nowMs: number): string | undefined;
}

/** The request a proof must be bound to (RFC 9449 §4.3 checks 8 and 9, §7 `ath`). */
export interface DpopTarget {
  /** The request's HTTP method (`htm`). */
  htm: string;
  /** The request's URL without query and fragment (`htu`). */
  htu: string;
  /**
   * The access token presented with the proof to a protected resource: the
   * proof's `ath` must be its hash (RFC 9449 §4.3 check 11, §7).
   */
  accessToken?: string;
}

export interface ValidDpopProof {
  /** RFC 7638 SHA-256 thumbprint of the proof key: the token's `cnf.jkt`. */
  jkt: string;
  /** Recorded once per key and `jti` for the acceptance window (RFC 9449 §11.1). */
  proof: ProofMark;
}

/** The answer when a proof's mark was already recorded. */
export const dpopProofReplayed = () =>
  oauthErrors.invalidDpopProof("DPoP proof has already been used");

/** Short reasons that name the rule, never the proof's content. */
const JWS_FAILURE_REASONS: Record<JwsFailure, string> = {
  header: "DPoP proof header is malformed",
  typ: "DPoP proof typ must be dpop+jwt",
  alg: "DPoP proof alg is not supported",
  jwk: "DPoP proof has no jwk",
  public: "DPoP proof jwk must be a public key",
  key: "DPoP proof jwk is not an accepted key for its alg",
  signature: "DPoP proof signature is invalid",
};

export function createDpopVerifier(
  nonces: DpopNonces,
  options: DpopOptions,
  logger: Logger,
): DpopVerifier {
  const invalid: (reason: string) => never = (reason) => {
    logger.debug({ event: "dpop_rejected", reason }, "DPoP proof rejected");
    throw oauthErrors.invalidDpopProof(reason);
  };

  const jws = createEmbeddedJwkJwsVerifier({
    typ: "dpop+jwt",
    algorithms: ASYMMETRIC_JWS_ALGORITHMS,
  });

  return {
    nonceFor: (nowMs) => (options.requireNonce ? nonces.current(nowMs) : undefined),

    async verify(header, target, nowMs) {
      // No DPoP header at all: a Bearer request. (The RPC's empty `dpop` field
      // means "absent" and arrives here as undefined.) A header that is present
      // but empty is not "a single and well-formed JWT" (check 2): refusing it
      // keeps a client whose proof went missing from getting an unbound token.
      if (header === undefined) return undefined;
      if (header === "") invalid("DPoP proof is not a compact JWS");
      // Check 1: exactly one DPoP header (Node joins repeated headers with ", ").
      if (Array.isArray(header) || header.includes(","))
        invalid("Exactly one DPoP proof is allowed");
      const proof = header as string;
      if (proof.length > MAX_JWT_LENGTH) invalid("DPoP proof is too large");
      // Check 2: a well-formed compact JWS.
      if (!isCompactJws(proof)) invalid("DPoP proof is not a compact JWS");

      // Checks 4–7: typ, an asymmetric algorithm from the allow-list, a public
      // jwk, and a signature that verifies with it (embedded-jwk-jws.ts).
      const verified = await jws.verify(proof, nowMs);
      if (typeof verified === "string") return invalid(JWS_FAILURE_REASONS[verified]);
      const { payload, jkt } = verified;

      // Check 8: htm and htu (query and fragment ignored, RFC 9449 §4.3 and §4.2).
      if (payload.htm !== target.htm) invalid("DPoP proof htm mismatch");
      if (
        typeof payload.htu !== "string" ||
        normaliseHtu(payload.htu) !== normaliseHtu(target.htu)
      ) {
        invalid("DPoP proof htu mismatch");
      }
      // With an access token (a protected resource, RFC 9449 §7): `ath` is the
      // base64url SHA-256 of that token, so a proof cannot be moved to another token.
      if (target.accessToken !== undefined && payload.ath !== accessTokenHash(target.accessToken)) {
        invalid("DPoP proof ath mismatch");
      }
      // Check 11: iat within the acceptance window.
      const iat = payload.iat;
      if (typeof iat !== "number" || Math.abs(iat - nowMs / 1000) > options.iatSkewSeconds) {
        invalid("DPoP proof iat is outside the acceptable window");
      }
      // Check 10: a server nonce, when required (RFC 9449 §8).
      if (options.requireNonce) {
        if (typeof payload.nonce !== "string" || !nonces.isFresh(payload.nonce, nowMs)) {
          throw oauthErrors.useDpopNonce(nonces.current(nowMs));
        }
      }
      const jti = payload.jti;
      if (typeof jti !== "string" || jti === "" || jti.length > 256)
        invalid("DPoP proof jti is missing");

      // Check 12: the jti is remembered for the whole acceptance window
      // (±skew), scoped to the key so two clients' random jtis never collide.
      const ttlMs = 2 * options.iatSkewSeconds * 1000 + 1000;
      return { jkt, proof: { id: `${jkt}.${jti as string}`, ttlMs } };
    },
  };
}

/** RFC 9449 §4.2 `ath`: base64url(SHA-256(ASCII(access token))). */
export function accessTokenHash(token: string): string {
  return createHash("sha256").update(token, "ascii").digest("base64url");
}

function normaliseHtu(value: string): string {
  try {
    const url = new URL(value);
    url.search = "";
    url.hash = "";
    return url.href;
  } catch {
    return "";
  }
}
