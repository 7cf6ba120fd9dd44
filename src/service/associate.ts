import { barcodeUri, newEnrollment, OTP_ID_PREFIX } from "../mfa/enrollment.js";
import type { SecretBox } from "../mfa/secret-box.js";
import { oauthErrors } from "../oauth/oauth-error.js";
import type { SecurityEvents } from "../observability/security-events.js";
import type { Store } from "../store/store.js";
import type { Clock } from "../util/clock.js";
import type { MfaApiAuthorizer } from "./mfa-api-caller.js";

export interface AssociateRequest {
  mfaToken: string | undefined;
  /** Requested types; only "otp" is supported (an empty list means "otp"). */
  authenticatorTypes: readonly string[];
}

export interface AssociateResult {
  authenticatorType: "otp";
  secret: string;
  barcodeUri: string;
  /** Only with the user's first association. */
  recoveryCodes: string[];
}

export interface AssociateDeps {
  authorize: MfaApiAuthorizer;
  store: Pick<Store, "associatePending">;
  totpSecrets: SecretBox;
  recoveryCodeKey: Buffer;
  /** Shown in authenticator apps. */
  issuerName: string;
  events: SecurityEvents;
  clock: Clock;
  /** PENDING_ENROLLMENT_TTL_SECONDS in milliseconds. */
  pendingTtlMs: number;
}

/**
 * Enrollment (Auth0's `POST /mfa/associate`): allowed only while the user has
 * no active OTP authenticator; creates a pending one (replacing an earlier
 * pending one), which the first successful verify activates. The recovery
 * code is handed out only with the user's first association.
 *
 * A pending authenticator expires PENDING_ENROLLMENT_TTL_SECONDS after
 * Associate (SPEC §4). Replacing a live pending one is allowed (a user who
 * lost the QR code starts again) but is its own security event,
 * `authenticator_replaced`: anyone with the password can do it, and the
 * victim's code then fails, so the audit trail must say what happened.
 */
export function createAssociate(deps: AssociateDeps) {
  return async function associate(request: AssociateRequest): Promise<AssociateResult> {
    const caller = await deps.authorize.mfaToken(request.mfaToken);
    if (request.authenticatorTypes.length > 0 && !request.authenticatorTypes.includes("otp")) {
      throw oauthErrors.invalidRequest.unsupportedValue(
        'Unsupported authenticator_types: only "otp" is supported',
      );
    }
    const enrollment = newEnrollment(caller.userId, deps.totpSecrets, deps.recoveryCodeKey);
    const result = await deps.store.associatePending(
      caller.userId,
      { id: enrollment.authenticatorId, encryptedSecret: enrollment.sealedSecret },
      enrollment.recoveryCodeHash,
      { nowMs: deps.clock.nowMs(), ttlMs: deps.pendingTtlMs },
    );
    if (result.kind === "already_enrolled") throw oauthErrors.accessDenied.alreadyEnrolled();
    const event = {
      userId: caller.userId,
      clientId: caller.clientId,
      authenticatorId: OTP_ID_PREFIX + enrollment.authenticatorId,
    };
    if (result.replaced)
      deps.events.record("authenticator_replaced", { ...event, outcome: "replaced" });
    deps.events.record("authenticator_enrolled", { ...event, outcome: "pending" });
    return {
      authenticatorType: "otp",
      secret: enrollment.secret,
      barcodeUri: barcodeUri(deps.issuerName, caller.userLabel || caller.userId, enrollment.secret),
      recoveryCodes: result.recoveryCodeStored ? [enrollment.recoveryCode] : [],
    };
  };
}
