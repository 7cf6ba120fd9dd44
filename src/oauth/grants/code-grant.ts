import type { MfaTokenClaims, MfaTokenCodec } from "../../mfa/mfa-token-codec.js";
import type { SecurityEvents } from "../../observability/security-events.js";
import type { LockedResult } from "../../store/store.js";
import type { ThrottledAddress } from "../address-throttle.js";
import type { ValidDpopProof } from "../dpop.js";
import { dpopProofReplayed } from "../dpop.js";
import { oauthErrors } from "../oauth-error.js";
import type { GrantInput, GrantOutcome } from "./grant.js";
import { openClientMfaToken } from "./live-mfa-token.js";
import { recordLockout } from "./lockout-events.js";

/** The answers the first store step of both code grants shares. */
type SharedRefusal = { kind: "proof_replayed" } | { kind: "mfa_token_used" } | LockedResult;

/**
 * The refusals the code grants' first store step shares, in its order: a
 * replayed DPoP proof (row 11), a used mfa_token (row 6), an empty failure
 * bucket (row 8, recorded as a lockout). Returns only for the step's own
 * answers.
 */
export function refuseSharedOutcome<R extends { kind: string }>(
  result: R | SharedRefusal,
  events: SecurityEvents,
  who: { userId: string; clientId: string; address: ThrottledAddress | undefined },
): asserts result is Exclude<R, SharedRefusal> {
  if (result.kind === "proof_replayed") throw dpopProofReplayed();
  if (result.kind === "mfa_token_used") throw oauthErrors.expiredToken();
  if (result.kind === "locked") {
    const locked = result as LockedResult;
    recordLockout(events, locked, who);
    throw oauthErrors.tooManyAttempts(locked.retryAfterSeconds);
  }
}

/** A code grant's success: the login the mfa_token describes, bound to the proof's key if any. */
export function codeGrantOutcome(
  claims: MfaTokenClaims,
  amr: readonly string[],
  dpop: ValidDpopProof | undefined,
): GrantOutcome {
  return {
    subject: {
      userId: claims.userId,
      clientId: claims.clientId,
      audience: claims.audience,
      scope: claims.scope,
      amr,
    },
    ...(dpop ? { dpopJkt: dpop.jkt } : {}),
  };
}

/** Rows 5–7 for a code grant: its `mfa_token`, live and issued to the authenticated client. */
export function openGrantMfaToken(codec: MfaTokenCodec, input: GrantInput<"mfa_token">) {
  return openClientMfaToken(codec, input.params.mfa_token, input.client.clientId, input.nowMs);
}
