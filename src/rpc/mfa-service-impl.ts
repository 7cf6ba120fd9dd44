import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { MfaService } from "@token-service/client";
import {
  associate,
  deleteAuthenticator,
  listAuthenticators,
  type MfaApiCredential,
  mfaApiCredentialOf,
} from "../mfa/enrollment.js";
import { presentedFromHeader } from "../oauth/protected-resource.js";
import type { ServiceContext } from "../service-context.js";
import { bearerTokenOf } from "./bearer.js";
import { dpopProofsOf } from "./token-service-impl.js";

/**
 * proto ⇄ domain for token.v1.MfaService. The mfa_token comes in the
 * request field or, as on REST, as `Authorization: Bearer`.
 */
export function createMfaServiceImpl(ctx: ServiceContext): ServiceImpl<typeof MfaService> {
  // RFC 9449 §4.3 check 9 on RPC: the issuer URL joined with the RPC path; every call is a POST.
  const listHtu = new URL("token.v1.MfaService/ListAuthenticators", ctx.config.issuerUrl).href;
  const deleteHtu = new URL("token.v1.MfaService/DeleteAuthenticator", ctx.config.issuerUrl).href;
  const resourceRequestOf = (dpopField: string, context: HandlerContext, htu: string) => ({
    dpopProof: dpopProofsOf(dpopField, context.requestHeader.get("dpop")),
    htm: "POST",
    htu,
  });
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
      const resource = resourceRequestOf(request.dpop, context, listHtu);
      const credential: MfaApiCredential =
        request.accessToken !== ""
          ? {
              kind: "access_token",
              request: { ...resource, presented: { scheme: "field", token: request.accessToken } },
            }
          : request.mfaToken !== ""
            ? { kind: "mfa_token", token: request.mfaToken }
            : mfaApiCredentialOf(
                presentedFromHeader(context.requestHeader.get("authorization")),
                resource,
              );
      const authenticators = await listAuthenticators(ctx, credential);
      return { authenticators };
    },
    async deleteAuthenticator(request, context) {
      const resource = resourceRequestOf(request.dpop, context, deleteHtu);
      await deleteAuthenticator(
        ctx,
        {
          ...resource,
          presented:
            request.accessToken !== ""
              ? { scheme: "field", token: request.accessToken }
              : presentedFromHeader(context.requestHeader.get("authorization")),
        },
        request.authenticatorId,
      );
      return {};
    },
  };
}
