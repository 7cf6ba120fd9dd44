import type { ServiceImpl } from "@connectrpc/connect";
import type { MfaService } from "@token-service/client";
import { type PresentedAccessToken, presentedFromHeader } from "../oauth/protected-resource.js";
import { type MfaApiCredential, mfaApiCredentialOf } from "../service/mfa-api-caller.js";
import { NO_STORE } from "../service/response-headers.js";
import type { Services } from "../service/services.js";
import { wireString } from "../service/wire-values.js";
import {
  type CallHeaders,
  type CorsForClient,
  clientCredentialsOf,
  dpopProofsOf,
  setResponseHeaders,
} from "./call-headers.js";

/**
 * proto ⇄ service for token.v1.MfaService. The credential comes in its
 * request field or, as on REST, as `Authorization` (Bearer, or DPoP for a
 * DPoP-bound access token).
 */
export function createMfaServiceImpl(
  services: Pick<
    Services,
    "associate" | "listAuthenticators" | "deleteAuthenticator" | "challenge"
  >,
  issuerUrl: string,
  corsFor: CorsForClient,
): ServiceImpl<typeof MfaService> {
  // RFC 9449 §4.3 check 9 on RPC: the issuer URL joined with the RPC path; every call is a POST.
  const htuOf = (method: string) => new URL(`token.v1.MfaService/${method}`, issuerUrl).href;
  const listHtu = htuOf("ListAuthenticators");
  const deleteHtu = htuOf("DeleteAuthenticator");
  const resourceOf = (dpopField: string, context: CallHeaders, htu: string) => ({
    dpopProof: dpopProofsOf(dpopField, context.requestHeader.get("dpop")),
    htm: "POST",
    htu,
  });
  const fromHeader = (context: CallHeaders) =>
    presentedFromHeader(context.requestHeader.get("authorization"));
  const accessTokenField = (token: string): PresentedAccessToken => ({ scheme: "field", token });

  return {
    async associate(request, context) {
      const result = await services.associate({
        mfaToken: request.mfaToken !== "" ? request.mfaToken : bearerOf(fromHeader(context)),
        authenticatorTypes: request.authenticatorTypes,
      });
      setResponseHeaders(context, NO_STORE);
      return result;
    },
    async listAuthenticators(request, context) {
      const resource = resourceOf(request.dpop, context, listHtu);
      const credential: MfaApiCredential =
        request.accessToken !== ""
          ? {
              kind: "access_token",
              request: { ...resource, presented: accessTokenField(request.accessToken) },
            }
          : request.mfaToken !== ""
            ? { kind: "mfa_token", token: request.mfaToken }
            : mfaApiCredentialOf(fromHeader(context), resource);
      const authenticators = await services.listAuthenticators(credential);
      setResponseHeaders(context, NO_STORE);
      return { authenticators };
    },
    async challenge(request, context) {
      const result = await services.challenge({
        client: clientCredentialsOf(request, context),
        mfaToken: wireString(request.mfaToken),
        challengeType: wireString(request.challengeType),
        authenticatorId: wireString(request.authenticatorId),
        onClientAuthenticated: (client) => setResponseHeaders(context, corsFor(context, client)),
      });
      setResponseHeaders(context, NO_STORE);
      return result;
    },
    async deleteAuthenticator(request, context) {
      await services.deleteAuthenticator({
        credential: {
          ...resourceOf(request.dpop, context, deleteHtu),
          presented:
            request.accessToken !== ""
              ? accessTokenField(request.accessToken)
              : fromHeader(context),
        },
        authenticatorId: request.authenticatorId,
      });
      return {};
    },
  };
}

/** An mfa_token travels as a Bearer credential only. */
function bearerOf(presented: PresentedAccessToken | undefined): string | undefined {
  return presented?.scheme === "Bearer" ? presented.token : undefined;
}
