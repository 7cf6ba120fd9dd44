import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type {
  IssueMfaTokenRequest,
  IssueMfaTokenResponseSchema,
  MfaTokenService,
} from "@token-service/client";
import { presentedFromHeader } from "../oauth/protected-resource.js";
import { NO_STORE } from "../service/response-headers.js";
import type { Services } from "../service/services.js";
import { type CallHeaders, CLIENT_ADDRESS, setResponseHeaders } from "./call-headers.js";

/** The internal API key as the call presents it (`Authorization: Bearer`), and where it comes from. */
function callerOf(context: CallHeaders): { apiKey: string | undefined; clientAddress: string } {
  const presented = presentedFromHeader(context.requestHeader.get("authorization"));
  return {
    apiKey: presented?.scheme === "Bearer" ? presented.token : undefined,
    clientAddress: context.values.get(CLIENT_ADDRESS),
  };
}

/**
 * proto ⇄ service for the internal token.v1.MfaTokenService. The internal
 * API key comes as `Authorization: Bearer`; the service checks it.
 */
export function createMfaTokenServiceImpl(
  services: Pick<
    Services,
    "issueMfaToken" | "revokeUserSessions" | "resetUserMfa" | "unlockUser" | "deleteUserData"
  >,
): ServiceImpl<typeof MfaTokenService> & {
  /** Needs only the call's headers: the unary fast path serves it too. */
  issueMfaToken(
    request: IssueMfaTokenRequest,
    context: CallHeaders,
  ): Promise<MessageInitShape<typeof IssueMfaTokenResponseSchema>>;
} {
  return {
    async issueMfaToken(request: IssueMfaTokenRequest, context: CallHeaders) {
      const issued = await services.issueMfaToken({
        ...callerOf(context),
        userId: request.userId,
        clientId: request.clientId,
        audience: request.audience,
        scope: request.scope,
        userLabel: request.userLabel,
      });
      setResponseHeaders(context, NO_STORE);
      const requirement = [{ type: "otp" }];
      return {
        mfaToken: issued.mfaToken,
        expiresIn: issued.expiresIn,
        mfaRequirements:
          issued.requirement === "challenge" ? { challenge: requirement } : { enroll: requirement },
      };
    },
    async revokeUserSessions(request, context) {
      const revoked = await services.revokeUserSessions({
        ...callerOf(context),
        userId: request.userId,
      });
      setResponseHeaders(context, NO_STORE);
      return { revoked };
    },
    async resetUserMfa(request, context) {
      const reset = await services.resetUserMfa({ ...callerOf(context), userId: request.userId });
      setResponseHeaders(context, NO_STORE);
      return reset;
    },
    async unlockUser(request, context) {
      await services.unlockUser({ ...callerOf(context), userId: request.userId });
      setResponseHeaders(context, NO_STORE);
      return {};
    },
    async deleteUserData(request, context) {
      await services.deleteUserData({ ...callerOf(context), userId: request.userId });
      setResponseHeaders(context, NO_STORE);
      return {};
    },
  };
}
