import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type {
  TokenService,
  VerifyMfaOtpRequest,
  VerifyMfaOtpResponseSchema,
} from "@token-service/client";
import type { GrantRequest } from "../oauth/grants/grant-request.js";
import { verifyMfaOtp } from "../oauth/grants/mfa-otp.js";
import { verifyMfaRecoveryCode } from "../oauth/grants/mfa-recovery-code.js";
import type { ServiceContext } from "../service-context.js";

/**
 * The part of a call's context the token RPCs use: connect-es's
 * HandlerContext satisfies it, and so does the unary fast path's.
 */
export interface CallHeaders {
  requestHeader: { get(name: string): string | null };
  responseHeader: { set(name: string, value: string): void };
}

export type VerifyMfaOtpCall = (
  request: VerifyMfaOtpRequest,
  context: CallHeaders,
) => Promise<MessageInitShape<typeof VerifyMfaOtpResponseSchema>>;

/** proto ⇄ domain for token.v1.TokenService; the rules live in oauth/grants. */
export function createTokenServiceImpl(
  ctx: ServiceContext,
): ServiceImpl<typeof TokenService> & { verifyMfaOtp: VerifyMfaOtpCall } {
  const htuOf = (method: string) =>
    new URL(`token.v1.TokenService/${method}`, ctx.config.issuerUrl).href;
  const verifyOtpHtu = htuOf("VerifyMfaOtp");
  const recoveryHtu = htuOf("VerifyMfaRecoveryCode");

  const grantRequest = (
    params: Record<string, unknown>,
    dpop: string,
    context: CallHeaders,
    dpopHtu: string,
  ): GrantRequest => ({
    params,
    authorization: context.requestHeader.get("authorization") ?? undefined,
    dpopHeader: dpopProofsOf(dpop, context.requestHeader.get("dpop")),
    dpopHtu,
  });

  const setTokenHeaders = (context: CallHeaders) => {
    context.responseHeader.set("cache-control", "no-store");
    const nonce = ctx.dpop.nonceFor(ctx.clock.nowMs());
    if (nonce !== undefined) context.responseHeader.set("dpop-nonce", nonce);
  };

  return {
    async verifyMfaOtp(request: VerifyMfaOtpRequest, context: CallHeaders) {
      const tokens = await verifyMfaOtp(
        ctx,
        grantRequest(
          {
            mfa_token: request.mfaToken,
            otp: request.otp,
            client_id: request.clientId,
            client_secret: request.clientSecret,
            client_assertion: request.clientAssertion,
            client_assertion_type: request.clientAssertionType,
          },
          request.dpop,
          context,
          verifyOtpHtu,
        ),
      );
      setTokenHeaders(context);
      return {
        accessToken: tokens.accessToken,
        tokenType: tokens.tokenType,
        expiresIn: tokens.expiresIn,
        scope: tokens.scope,
        idToken: tokens.idToken ?? "",
      };
    },
    async verifyMfaRecoveryCode(request, context) {
      const tokens = await verifyMfaRecoveryCode(
        ctx,
        grantRequest(
          {
            mfa_token: request.mfaToken,
            recovery_code: request.recoveryCode,
            client_id: request.clientId,
            client_secret: request.clientSecret,
            client_assertion: request.clientAssertion,
            client_assertion_type: request.clientAssertionType,
          },
          request.dpop,
          context,
          recoveryHtu,
        ),
      );
      setTokenHeaders(context);
      return {
        accessToken: tokens.accessToken,
        tokenType: tokens.tokenType,
        expiresIn: tokens.expiresIn,
        scope: tokens.scope,
        idToken: tokens.idToken ?? "",
        recoveryCode: tokens.recoveryCode,
      };
    },
  };
}

/**
 * RPC: the proof comes in the `dpop` field or the `DPoP` request header
 * (SPEC §3). Both at once are two proofs, which RFC 9449 §4.3 check 1 refuses.
 */
export function dpopProofsOf(field: string, header: string | null): string | string[] | undefined {
  if (field !== "" && header !== null) return [field, header];
  return field !== "" ? field : (header ?? undefined);
}
