import { OTP_ID_PREFIX } from "../mfa/enrollment.js";
import { recoveryCodeAuthenticatorId } from "../mfa/recovery-code.js";
import type { Store } from "../store/store.js";
import type { MfaApiAuthorizer, MfaApiCredential } from "./mfa-api-caller.js";

export interface AuthenticatorView {
  id: string;
  authenticatorType: "otp" | "recovery-code";
  active: boolean;
}

export interface ListAuthenticatorsDeps {
  authorize: MfaApiAuthorizer;
  store: Pick<Store, "getFactors">;
  /** Derives the recovery-code authenticator's id. */
  recoveryCodeKey: Buffer;
}

/**
 * Auth0's `GET /mfa/authenticators` (an mfa_token, or an MFA API token with
 * `read:authenticators`): the OTP authenticator, then — while the user has
 * a recovery code — the recovery-code authenticator, as Auth0 lists it
 * (apps look for it to offer "use a recovery code").
 */
export function createListAuthenticators(deps: ListAuthenticatorsDeps) {
  return async function listAuthenticators(
    credential: MfaApiCredential,
  ): Promise<AuthenticatorView[]> {
    const caller = await deps.authorize.either(credential, "read:authenticators");
    const factors = await deps.store.getFactors(caller.userId);
    const list: AuthenticatorView[] = [];
    if (factors.otp !== null) {
      list.push({
        id: OTP_ID_PREFIX + factors.otp.id,
        authenticatorType: "otp",
        active: factors.otp.active,
      });
    }
    if (factors.hasRecoveryCode) {
      list.push({
        id: recoveryCodeAuthenticatorId(deps.recoveryCodeKey, caller.userId),
        authenticatorType: "recovery-code",
        active: true,
      });
    }
    return list;
  };
}
