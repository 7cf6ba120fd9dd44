import { MAX_MFA_TOKEN_LENGTH, type MfaTokenCodec } from "../mfa/mfa-token-codec.js";
import type { ClientRegistry } from "../oauth/client-registry.js";
import { MFA_OTP_GRANT } from "../oauth/grants/mfa-otp.js";
import { oauthErrors } from "../oauth/oauth-error.js";
import type { Store } from "../store/store.js";
import type { Clock } from "../util/clock.js";
import {
  createInternalUserCall,
  type InternalCall,
  type InternalKeyGate,
  MAX_USER_ID_LENGTH,
} from "./internal-api-key.js";

export interface IssueMfaTokenRequest extends InternalCall {
  userId: string;
  clientId: string;
  audience: string;
  scope: string;
  userLabel: string;
}

export interface IssuedMfaToken {
  mfaToken: string;
  expiresIn: number;
  /** Auth0's `mfa_requirements`: challenge when an active OTP authenticator exists, else enroll. */
  requirement: "challenge" | "enroll";
}

/**
 * Longest accepted value of each field, in characters. Every mfa_token the
 * service mints must be one it accepts (its sealed form stays under
 * MAX_MFA_TOKEN_LENGTH), so the inputs are bounded.
 */
export const ISSUE_MFA_TOKEN_LIMITS = {
  user_id: MAX_USER_ID_LENGTH,
  client_id: 255,
  audience: 512,
  scope: 1024,
  user_label: 255,
} as const;

export interface IssueMfaTokenDeps {
  /** The internal API key's check (internal-api-key.ts). */
  internalKey: InternalKeyGate;
  clients: () => ClientRegistry;
  mfaTokens: MfaTokenCodec;
  store: Pick<Store, "getAuthenticator">;
  clock: Clock;
  ttlSeconds: number;
}

/**
 * The internal `IssueMfaToken`: a first-factor service, authenticated with
 * the internal API key (internal-api-key.ts), names the
 * user and client; the token is sealed, so issuing it writes nothing.
 */
export function createIssueMfaToken(deps: IssueMfaTokenDeps) {
  const checkCall = createInternalUserCall(deps.internalKey, "IssueMfaToken");
  return async function issueMfaToken(request: IssueMfaTokenRequest): Promise<IssuedMfaToken> {
    await checkCall(request);
    if (request.clientId === "") throw oauthErrors.invalidRequest.missingParameter("client_id");
    checkLimits(request);
    const client = deps.clients().get(request.clientId);
    if (client === undefined) throw oauthErrors.invalidRequest.unknownClient();
    if (!client.grantTypes.includes(MFA_OTP_GRANT)) {
      throw oauthErrors.unauthorizedClient(MFA_OTP_GRANT);
    }
    // Rounded up: the token lives at least the whole TTL (it is checked in ms).
    const nowSeconds = Math.ceil(deps.clock.nowMs() / 1000);
    const { token } = deps.mfaTokens.issue({
      userId: request.userId,
      clientId: request.clientId,
      audience: request.audience,
      scope: request.scope,
      userLabel: request.userLabel,
      expiresAt: nowSeconds + deps.ttlSeconds,
    });
    if (token.length > MAX_MFA_TOKEN_LENGTH) {
      // Only reachable with odd input (e.g. lone surrogates, which JSON escapes
      // as six characters); no unusable token ever leaves.
      throw oauthErrors.invalidRequest.unsupportedValue("The mfa_token would be too large");
    }
    const authenticator = await deps.store.getAuthenticator(request.userId);
    return {
      mfaToken: token,
      expiresIn: deps.ttlSeconds,
      requirement: authenticator?.active ? "challenge" : "enroll",
    };
  };
}

/** Documented caps, and no control characters (they have no place in ids, labels or scopes). */
function checkLimits(request: IssueMfaTokenRequest): void {
  const fields: Record<keyof typeof ISSUE_MFA_TOKEN_LIMITS, string> = {
    user_id: request.userId,
    client_id: request.clientId,
    audience: request.audience,
    scope: request.scope,
    user_label: request.userLabel,
  };
  for (const [name, value] of Object.entries(fields)) {
    const max = ISSUE_MFA_TOKEN_LIMITS[name as keyof typeof ISSUE_MFA_TOKEN_LIMITS];
    if (value.length > max) throw oauthErrors.invalidRequest.tooLong(name, max);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
    if (/[\u0000-\u001f\u007f]/.test(value)) {
      throw oauthErrors.invalidRequest.unsupportedValue(
        `${name} must not contain control characters`,
      );
    }
  }
}
