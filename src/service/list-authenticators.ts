import { OTP_ID_PREFIX } from "../mfa/enrollment.js";
import type { Store } from "../store/store.js";
import type { MfaApiAuthorizer, MfaApiCredential } from "./mfa-api-caller.js";

export interface AuthenticatorView {
  id: string;
  authenticatorType: "otp" | "recovery-code";
  active: boolean;
}

export interface ListAuthenticatorsDeps {
  authorize: MfaApiAuthorizer;
  store: Pick<Store, "getAuthenticator">;
}

/** Auth0's `GET /mfa/authenticators`: an mfa_token, or an MFA API token with `read:authenticators`. */
export function createListAuthenticators(deps: ListAuthenticatorsDeps) {
  return async function listAuthenticators(
    credential: MfaApiCredential,
  ): Promise<AuthenticatorView[]> {
    const caller = await deps.authorize.either(credential, "read:authenticators");
    const authenticator = await deps.store.getAuthenticator(caller.userId);
    if (authenticator === null) return [];
    return [
      {
        id: OTP_ID_PREFIX + authenticator.id,
        authenticatorType: "otp",
        active: authenticator.active,
      },
    ];
  };
}
