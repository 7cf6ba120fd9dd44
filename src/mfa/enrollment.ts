import { randomBytes } from "node:crypto";
import { decodeLiveMfaToken, mfaTokenRefOf } from "../oauth/grants/grant-request.js";
import { oauthErrors } from "../oauth/oauth-error.js";
import {
  authorizeAccessToken,
  type PresentedAccessToken,
  type ProtectedResourceRequest,
} from "../oauth/protected-resource.js";
import type { ServiceContext } from "../service-context.js";
import { PROOF_SCOPE } from "../store/store.js";
import { sealTotpSecret } from "./authenticator-secret.js";
import { looksLikeMfaToken, type MfaTokenClaims } from "./mfa-token-codec.js";
import { generateRecoveryCode, hashRecoveryCode } from "./recovery-code.js";
import {
  decodeBase32Secret,
  generateTotpSecret,
  TOTP_DIGITS,
  TOTP_PERIOD_SECONDS,
} from "./totp.js";

/** Auth0 MFA API ids of OTP authenticators start with "totp|" (SPEC §3). */
export const OTP_ID_PREFIX = "totp|";

export interface AssociateResult {
  authenticatorType: "otp";
  secret: string;
  barcodeUri: string;
  recoveryCodes: string[];
}

export interface AuthenticatorView {
  id: string;
  authenticatorType: "otp";
  active: boolean;
}

/**
 * The mfa_token that authorises an /mfa/* call: missing is row 3, unparsable
 * row 5, expired or consumed row 6 (SPEC §5, "Rows 5 and 6 apply to the
 * /mfa/* routes too").
 */
async function authorise(
  ctx: ServiceContext,
  rawToken: string | undefined,
): Promise<MfaTokenClaims> {
  if (rawToken === undefined || rawToken === "") throw oauthErrors.missingParameter("mfa_token");
  const token = decodeLiveMfaToken(ctx, rawToken, ctx.clock.nowMs());
  if (await ctx.store.isMfaTokenConsumed(mfaTokenRefOf(token))) throw oauthErrors.expiredMfaToken();
  return token;
}

/**
 * SPEC §4 Enrollment: allowed only while the user has no active OTP
 * authenticator; creates a pending one (replacing an earlier pending one),
 * which the first successful verify activates. Recovery codes are handed out
 * only with the user's first association.
 */
export async function associate(
  ctx: ServiceContext,
  rawToken: string | undefined,
  authenticatorTypes: readonly string[],
): Promise<AssociateResult> {
  const token = await authorise(ctx, rawToken);
  if (authenticatorTypes.length > 0 && !authenticatorTypes.includes("otp")) {
    throw oauthErrors.badBody(400, 'Unsupported authenticator_types: only "otp" is supported');
  }
  const secret = generateTotpSecret();
  const authenticatorId = randomBytes(12).toString("base64url");
  const recoveryCode = generateRecoveryCode();
  const result = await ctx.store.associatePending(
    token.userId,
    {
      id: authenticatorId,
      encryptedSecret: sealTotpSecret(
        ctx.totpSecrets,
        token.userId,
        authenticatorId,
        decodeBase32Secret(secret),
      ),
    },
    hashRecoveryCode(ctx.recoveryCodeKey, token.userId, recoveryCode),
  );
  if (result.kind === "already_enrolled") throw oauthErrors.alreadyEnrolled();
  return {
    authenticatorType: "otp",
    secret,
    barcodeUri: barcodeUri(ctx.config.issuerName, token.userLabel || token.userId, secret),
    recoveryCodes: result.recoveryCodeStored ? [recoveryCode] : [],
  };
}

/** Key Uri Format, percent-encoding issuer and label (SPEC §3). */
export function barcodeUri(issuerName: string, userLabel: string, secret: string): string {
  const issuer = encodeURIComponent(issuerName);
  return (
    `otpauth://totp/${issuer}:${encodeURIComponent(userLabel)}?secret=${secret}&issuer=${issuer}` +
    `&algorithm=SHA1&digits=${TOTP_DIGITS}&period=${TOTP_PERIOD_SECONDS}`
  );
}

/**
 * Who may call the MFA API's list and delete: an mfa_token (list only) or an
 * MFA API access token (an access token for the audience `<issuer>mfa/`).
 */
export type MfaApiCredential =
  | { kind: "mfa_token"; token: string | undefined }
  | { kind: "access_token"; request: ProtectedResourceRequest };

/**
 * The MFA API credential an `Authorization` header carries: the DPoP scheme
 * is always an access token; a Bearer credential is an mfa_token when it has
 * the mfa_token's form, an access token when it has a JWT's, else a
 * malformed mfa_token (row 5). No header is a missing mfa_token (row 3).
 */
export function mfaApiCredentialOf(
  presented: PresentedAccessToken | undefined,
  request: Omit<ProtectedResourceRequest, "presented">,
): MfaApiCredential {
  if (presented === undefined) return { kind: "mfa_token", token: undefined };
  if (
    presented.scheme === "Bearer" &&
    (looksLikeMfaToken(presented.token) || !COMPACT_JWS.test(presented.token))
  ) {
    return { kind: "mfa_token", token: presented.token };
  }
  return { kind: "access_token", request: { ...request, presented } };
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** The MFA API's audience: Auth0's `https://{domain}/mfa/`. */
export function mfaApiAudience(issuerUrl: string): string {
  return new URL("mfa/", issuerUrl).href;
}

async function authoriseAccessToken(
  ctx: ServiceContext,
  request: ProtectedResourceRequest,
  scope: string,
) {
  return authorizeAccessToken(
    {
      accessTokens: ctx.accessTokens,
      dpop: ctx.dpop,
      rememberProof: (mark) => ctx.store.rememberOnce(PROOF_SCOPE, mark.id, mark.ttlMs),
    },
    request,
    { audience: mfaApiAudience(ctx.config.issuerUrl), scope, amr: "mfa" },
    ctx.clock.nowMs(),
  );
}

export async function listAuthenticators(
  ctx: ServiceContext,
  credential: MfaApiCredential,
): Promise<AuthenticatorView[]> {
  const userId =
    credential.kind === "mfa_token"
      ? (await authorise(ctx, credential.token)).userId
      : (await authoriseAccessToken(ctx, credential.request, "read:authenticators")).sub;
  const authenticator = await ctx.store.getAuthenticator(userId);
  if (authenticator === null) return [];
  return [
    {
      id: OTP_ID_PREFIX + authenticator.id,
      authenticatorType: "otp",
      active: authenticator.active,
    },
  ];
}

/**
 * Removing a factor needs the second factor: only an MFA API access token
 * with `remove:authenticators` (obtained by passing MFA) may delete one.
 * With an mfa_token — all a password-only attacker can get — anyone could
 * delete the user's authenticator, enroll their own and log in.
 */
export async function deleteAuthenticator(
  ctx: ServiceContext,
  request: ProtectedResourceRequest,
  authenticatorId: string,
): Promise<void> {
  const claims = await authoriseAccessToken(ctx, request, "remove:authenticators");
  if (authenticatorId === "") throw oauthErrors.missingParameter("authenticator_id");
  const deleted =
    authenticatorId.startsWith(OTP_ID_PREFIX) &&
    (await ctx.store.deleteAuthenticator(claims.sub, authenticatorId.slice(OTP_ID_PREFIX.length)));
  if (!deleted) throw oauthErrors.authenticatorNotFound();
  ctx.logger.info(
    {
      event: "authenticator_deleted",
      user_id: claims.sub,
      client_id: claims.clientId,
      authenticator_id: authenticatorId,
      outcome: "deleted",
    },
    "authenticator deleted",
  );
}
