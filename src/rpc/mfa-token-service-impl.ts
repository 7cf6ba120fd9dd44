import { createHash, timingSafeEqual } from "node:crypto";
import type { ServiceImpl } from "@connectrpc/connect";
import type { MfaTokenService } from "@token-service/client";
import { issueMfaToken } from "../mfa/mfa-token-issuance.js";
import { oauthErrors } from "../oauth/oauth-error.js";
import type { ServiceContext } from "../service-context.js";
import { bearerTokenOf } from "./bearer.js";

const sha256 = (value: string) => createHash("sha256").update(value, "utf8").digest();

/**
 * proto ⇄ domain for the internal token.v1.MfaTokenService. Only
 * `Authorization: Bearer <INTERNAL_API_KEY>` is accepted, compared in
 * constant time over digests (SPEC §2); anything else is Unauthenticated.
 */
export function createMfaTokenServiceImpl(
  ctx: ServiceContext,
): ServiceImpl<typeof MfaTokenService> {
  const expected = sha256(ctx.config.internalApiKey);
  return {
    async issueMfaToken(request, context) {
      const presented = bearerTokenOf(context.requestHeader.get("authorization"));
      if (presented === undefined || !timingSafeEqual(expected, sha256(presented))) {
        throw oauthErrors.internalUnauthenticated();
      }
      const issued = await issueMfaToken(ctx, request);
      context.responseHeader.set("cache-control", "no-store");
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
