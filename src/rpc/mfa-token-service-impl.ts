import type { ServiceImpl } from "@connectrpc/connect";
import type { MfaTokenService } from "@token-service/client";
import { presentedFromHeader } from "../oauth/protected-resource.js";
import { NO_STORE } from "../service/response-headers.js";
import type { Services } from "../service/services.js";
import { setResponseHeaders } from "./call-headers.js";

/**
 * proto ⇄ service for the internal token.v1.MfaTokenService. The internal
 * API key comes as `Authorization: Bearer`; the service checks it.
 */
export function createMfaTokenServiceImpl(
  services: Pick<Services, "issueMfaToken">,
): ServiceImpl<typeof MfaTokenService> {
  return {
    async issueMfaToken(request, context) {
      const presented = presentedFromHeader(context.requestHeader.get("authorization"));
      const issued = await services.issueMfaToken({
        apiKey: presented?.scheme === "Bearer" ? presented.token : undefined,
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
  };
}
