import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type {
  TokenService,
  VerifyMfaOtpRequest,
  VerifyMfaOtpResponseSchema,
} from "@token-service/client";
import { MFA_OTP_GRANT } from "../oauth/grants/mfa-otp.js";
import { MFA_RECOVERY_CODE_GRANT } from "../oauth/grants/mfa-recovery-code.js";
import { REFRESH_TOKEN_GRANT } from "../oauth/sessions/session-policy.js";
import { AUTH0_FORWARDED_FOR } from "../server/client-address.js";
import { NO_STORE, tokenResponseHeaders } from "../service/response-headers.js";
import type { Services } from "../service/services.js";
import type { TokenRequest, TokenResult } from "../service/token-endpoint.js";
import { wireString } from "../service/wire-values.js";
import {
  type CallHeaders,
  CLIENT_ADDRESS,
  type CorsForClient,
  type CredentialFields,
  clientCredentialsOf,
  dpopProofsOf,
  setResponseHeaders,
} from "./call-headers.js";

export type VerifyMfaOtpCall = (
  request: VerifyMfaOtpRequest,
  context: CallHeaders,
) => Promise<MessageInitShape<typeof VerifyMfaOtpResponseSchema>>;

/** The fields of a token request: client authentication and a DPoP proof. */
interface TokenRequestFields extends CredentialFields {
  dpop: string;
}

/**
 * proto ⇄ service for token.v1.TokenService: each token RPC is the token
 * endpoint with its grant fixed, RevokeToken the revocation use case; the
 * rules live in the service and the grants.
 */
export function createTokenServiceImpl(
  services: Pick<Services, "tokenEndpoint" | "revokeToken">,
  issuerUrl: string,
  corsFor: CorsForClient,
): ServiceImpl<typeof TokenService> & { verifyMfaOtp: VerifyMfaOtpCall } {
  const { tokenEndpoint } = services;
  // RFC 9449 §4.3 check 9 on RPC: the issuer URL joined with the RPC path.
  const htuOf = (method: string) => new URL(`token.v1.TokenService/${method}`, issuerUrl).href;
  const verifyOtpHtu = htuOf("VerifyMfaOtp");
  const recoveryHtu = htuOf("VerifyMfaRecoveryCode");
  const refreshHtu = htuOf("RefreshToken");

  const exchange = async (
    grantType: string,
    request: TokenRequestFields,
    params: TokenRequest["params"],
    context: CallHeaders,
    htu: string,
  ): Promise<TokenResult> => {
    const result = await tokenEndpoint.exchange({
      grantType,
      client: clientCredentialsOf(request, context),
      onClientAuthenticated: (client) => setResponseHeaders(context, corsFor(context, client)),
      params,
      dpop: { proofs: dpopProofsOf(request.dpop, context.requestHeader.get("dpop")), htu },
      clientAddress: context.values.get(CLIENT_ADDRESS),
      auth0ForwardedFor: context.requestHeader.get(AUTH0_FORWARDED_FOR) ?? undefined,
    });
    setResponseHeaders(context, tokenResponseHeaders(result));
    return result;
  };

  return {
    async verifyMfaOtp(request: VerifyMfaOtpRequest, context: CallHeaders) {
      const { tokens, refreshToken } = await exchange(
        MFA_OTP_GRANT,
        request,
        { mfa_token: wireString(request.mfaToken), otp: wireString(request.otp) },
        context,
        verifyOtpHtu,
      );
      return { ...tokens, idToken: tokens.idToken ?? "", refreshToken: refreshToken ?? "" };
    },
    async verifyMfaRecoveryCode(request, context) {
      const { tokens, recoveryCode, refreshToken } = await exchange(
        MFA_RECOVERY_CODE_GRANT,
        request,
        {
          mfa_token: wireString(request.mfaToken),
          recovery_code: wireString(request.recoveryCode),
        },
        context,
        recoveryHtu,
      );
      return {
        ...tokens,
        idToken: tokens.idToken ?? "",
        recoveryCode: recoveryCode ?? "",
        refreshToken: refreshToken ?? "",
      };
    },
    async refreshToken(request, context) {
      const { tokens, refreshToken } = await exchange(
        REFRESH_TOKEN_GRANT,
        request,
        { refresh_token: wireString(request.refreshToken), scope: wireString(request.scope) },
        context,
        refreshHtu,
      );
      return { ...tokens, idToken: tokens.idToken ?? "", refreshToken: refreshToken ?? "" };
    },
    async revokeToken(request, context) {
      await services.revokeToken({
        client: clientCredentialsOf(request, context),
        token: wireString(request.token),
        tokenTypeHint: wireString(request.tokenTypeHint),
        onClientAuthenticated: (client) => setResponseHeaders(context, corsFor(context, client)),
      });
      setResponseHeaders(context, NO_STORE);
      return {};
    },
  };
}
