import type { ProofMark } from "../../store/store.js";
import type { RegisteredClient } from "../client-registry.js";
import { dpopProofReplayed } from "../dpop.js";
import { oauthErrors } from "../oauth-error.js";
import type { SessionDeps } from "./session-deps.js";
import { sessionPolicyOf } from "./session-policy.js";
import { narrowScope } from "./session-scope.js";

/** A valid DPoP proof of the request (as the DPoP verifier returns it). */
export interface ExchangeDpop {
  /** RFC 7638 thumbprint of the proof's key. */
  jkt: string;
  /** Recorded as used inside the exchange step. */
  proof?: ProofMark;
}

export interface ExchangeRefreshTokenInput {
  /** The client, already authenticated as registered. */
  client: Pick<RegisteredClient, "clientId" | "refreshToken">;
  refreshToken: string;
  /** Requested scope (RFC 6749 §6); absent or blank: the scope granted at the login. */
  scope?: string | undefined;
  dpop?: ExchangeDpop | undefined;
  nowMs: number;
}

/** What the new tokens are issued for: the login's identity, the granted scope. */
export interface RefreshedGrant {
  userId: string;
  clientId: string;
  audience: string;
  /** Narrowed when a narrower scope was requested. */
  scope: string;
  amr: readonly string[];
  /** When the login happened (Unix seconds): the ID token's `auth_time`. */
  authTimeSeconds: number;
  /**
   * The key the new access token is bound to (`cnf.jkt`): the proof's key
   * whenever a valid proof came with the exchange (for a bound family it is
   * necessarily the family's key).
   */
  dpopJkt?: string;
  /** Rotating clients: the successor (the presented token is retired). Absent for non-rotating clients. */
  refreshToken?: string;
}

/**
 * The refresh_token grant below the surface. Checks in this order, each
 * before anything changes: the token is one of ours (row 21) and issued to
 * this client (row 21; nothing else is revealed, nothing changes); a family
 * bound to a DPoP key needs a valid proof by that key (row 11, RFC 9449 §5);
 * the scope is within the login's (row 22). Then ONE store step records the
 * proof, checks expiry and applies the rotation and reuse rule
 * (store/session-scripts.ts): a replayed proof is row 11, any refusal row 21.
 */
export async function exchangeRefreshToken(
  deps: SessionDeps,
  input: ExchangeRefreshTokenInput,
): Promise<RefreshedGrant> {
  const claims = deps.codec.open(input.refreshToken);
  if (claims === null) throw oauthErrors.invalidGrant.invalidRefreshToken();
  if (claims.clientId !== input.client.clientId) {
    throw oauthErrors.invalidGrant.invalidRefreshToken();
  }
  if (claims.jkt !== undefined) {
    if (input.dpop === undefined) {
      throw oauthErrors.invalidDpopProof("DPoP proof is required for this refresh token");
    }
    if (input.dpop.jkt !== claims.jkt) {
      throw oauthErrors.invalidDpopProof("DPoP proof key does not match the refresh token");
    }
  }
  const scope = narrowScope(claims.scope, input.scope);
  if (scope === null) throw oauthErrors.invalidScope();

  const policy = sessionPolicyOf(input.client.refreshToken);
  // The successor carries the same claims (family, grant, binding) and new random bytes.
  const successor = policy.rotating ? deps.codec.seal(claims) : undefined;
  const family = { userId: claims.userId, familyId: claims.familyId };
  const result = await deps.store.exchange({
    family,
    presentedHash: deps.hash(input.refreshToken),
    successorHash: successor === undefined ? "" : deps.hash(successor),
    nowMs: input.nowMs,
    policy,
    ...(input.dpop?.proof ? { proof: input.dpop.proof } : {}),
  });

  switch (result.kind) {
    case "proof_replayed":
      throw dpopProofReplayed();
    case "reused":
      deps.onReuseDetected?.({ ...family, clientId: claims.clientId });
      throw oauthErrors.invalidGrant.invalidRefreshToken();
    case "invalid":
      throw oauthErrors.invalidGrant.invalidRefreshToken();
    case "rotated":
    case "reissued":
    case "kept":
      return {
        userId: claims.userId,
        clientId: claims.clientId,
        audience: claims.audience,
        scope,
        amr: claims.amr,
        authTimeSeconds: claims.authTime,
        ...(input.dpop ? { dpopJkt: input.dpop.jkt } : {}),
        ...(result.kind !== "kept" && successor !== undefined ? { refreshToken: successor } : {}),
      };
  }
}
