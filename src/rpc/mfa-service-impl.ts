import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { MfaService } from "@token-service/client";
import { associate, deleteAuthenticator, listAuthenticators } from "../mfa/enrollment.js";
import type { ServiceContext } from "../service-context.js";
import { bearerTokenOf } from "./bearer.js";

/**
 * proto ⇄ domain for token.v1.MfaService. The mfa_token comes in the
 * request field or, as on REST, as `Authorization: Bearer`.
 */
export function createMfaServiceImpl(ctx: ServiceContext): ServiceImpl<typeof MfaService> {
  const tokenOf = (field: string, context: HandlerContext) =>
    field !== "" ? field : bearerTokenOf(context.requestHeader.get("authorization"));
  return {
    async associate(request, context) {
      const result = await associate(
        ctx,
        tokenOf(request.mfaToken, context),
        request.authenticatorTypes,
      );
      context.responseHeader.set("cache-control", "no-store");
      return result;
    },
    async listAuthenticators(request, context) {
      const authenticators = await listAuthenticators(ctx, tokenOf(request.mfaToken, context));
      return { authenticators };
    },
    async deleteAuthenticator(request, context) {
      await deleteAuthenticator(ctx, tokenOf(request.mfaToken, context), request.authenticatorId);
      return {};
    },
  };
}
