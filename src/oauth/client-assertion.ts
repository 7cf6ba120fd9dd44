import { createLocalJWKSet, decodeJwt, jwtVerify } from "jose";
import type { Logger } from "../observability/logger.js";
import type { Store } from "../store/store.js";
import type { Clock } from "../util/clock.js";
import type { AssertionVerifier } from "./client-auth.js";
import type { RegisteredClient } from "./client-registry.js";
import { ASYMMETRIC_JWS_ALGORITHMS, jwsAlgorithmNames, MAX_JWT_LENGTH } from "./jose-algorithms.js";

/** RFC 7523 §3 rules this service sets where the RFC leaves a bound to the server. */
const MAX_LIFETIME_SECONDS = 300;
const CLOCK_SKEW_SECONDS = 30;

/**
 * private_key_jwt (RFC 7523 §2.2, §3; OIDC Core §9): the assertion is signed
 * by a key in the client's registered `jwks`; iss = sub = client_id; aud is
 * the issuer or the token endpoint URL; exp required and at most 5 minutes
 * ahead; iat/nbf not in the future beyond a small skew; jti required and used
 * once until exp (RFC 7523 §3 point 7). Every failure is the same row-1
 * answer for the caller; the rule that failed is logged at debug, never the
 * assertion itself.
 */
export function createAssertionVerifier(options: {
  issuerUrl: string;
  store: Store;
  clock: Clock;
  logger: Logger;
}): AssertionVerifier {
  const audiences = [options.issuerUrl, new URL("oauth/token", options.issuerUrl).href];
  // Per client object: a reload that changes a client's jwks gives a new object, hence new keys.
  const keySets = new WeakMap<RegisteredClient, ReturnType<typeof createLocalJWKSet>>();

  return async (client, assertion) => {
    const reject = (reason: string) => {
      options.logger.debug(
        { event: "client_assertion_rejected", client_id: client.clientId, reason },
        reason,
      );
      return false;
    };
    if (assertion.length > MAX_JWT_LENGTH) return reject("assertion too large");
    let keys = keySets.get(client);
    if (keys === undefined) {
      keys = createLocalJWKSet(withAlgorithmAliases(client.jwks ?? { keys: [] }));
      keySets.set(client, keys);
    }
    const nowMs = options.clock.nowMs();
    const nowSeconds = nowMs / 1000;
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(assertion, keys, {
        algorithms: ASYMMETRIC_JWS_ALGORITHMS,
        issuer: client.clientId,
        subject: client.clientId,
        audience: audiences,
        requiredClaims: ["exp", "jti"],
        clockTolerance: CLOCK_SKEW_SECONDS,
        currentDate: new Date(nowMs),
      }));
    } catch (error) {
      // jose names the claim that failed (iss, sub, aud, exp, nbf, jti) and how
      // (missing / check_failed): that is the rule, safe to log; values never are.
      const { code, claim, reason } = error as { code?: string; claim?: string; reason?: string };
      const rule = typeof claim === "string" ? ` (${claim}: ${reason ?? "invalid"})` : "";
      return reject(`assertion rejected: ${code ?? "invalid"}${rule}`);
    }
    const exp = payload.exp as number;
    if (exp > nowSeconds + MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS)
      return reject("exp too far ahead");
    if (typeof payload.iat === "number" && payload.iat > nowSeconds + CLOCK_SKEW_SECONDS) {
      return reject("iat in the future");
    }
    const jti = payload.jti;
    if (typeof jti !== "string" || jti === "" || jti.length > 256) return reject("jti missing");
    const ttlMs = Math.max(1000, Math.ceil((exp + CLOCK_SKEW_SECONDS - nowSeconds) * 1000));
    if (!(await options.store.rememberOnce(`assertion:${client.clientId}`, jti, ttlMs))) {
      return reject("jti replayed");
    }
    return true;
  };
}

/**
 * The client's keys, each one that names `EdDSA` or `Ed25519` also under the
 * other name: jose picks a key only when its `alg` equals the assertion's,
 * and a client registered as EdDSA whose library now signs as Ed25519 (RFC
 * 9864) is the same key and the same signature.
 */
function withAlgorithmAliases(jwks: { keys: Record<string, unknown>[] }): {
  keys: Record<string, unknown>[];
} {
  return {
    keys: jwks.keys.flatMap((jwk) =>
      typeof jwk.alg === "string"
        ? jwsAlgorithmNames(jwk.alg).map((alg) => ({ ...jwk, alg }))
        : [jwk],
    ),
  };
}

/**
 * RFC 7523 §3: client_id is optional with an assertion; the client is then
 * named by the (not yet verified) `sub`. Verification follows with that
 * client's own keys.
 */
export function assertionSubject(assertion: unknown): string | undefined {
  if (typeof assertion !== "string" || assertion.length > MAX_JWT_LENGTH) return undefined;
  try {
    const sub = decodeJwt(assertion).sub;
    return typeof sub === "string" ? sub : undefined;
  } catch {
    return undefined;
  }
}
