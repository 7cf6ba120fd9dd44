import { associate, deleteAuthenticator, listAuthenticators } from "../mfa/enrollment.js";
import type { GrantRequest } from "../oauth/grants/grant-request.js";
import { verifyMfaOtp } from "../oauth/grants/mfa-otp.js";
import { verifyMfaRecoveryCode } from "../oauth/grants/mfa-recovery-code.js";
import { MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT, oauthErrors } from "../oauth/oauth-error.js";
import { toOAuthError } from "../oauth/to-oauth-error.js";
import { bearerTokenOf } from "../rpc/bearer.js";
import type { ServiceContext } from "../service-context.js";
import { buildDiscoveryDocument, buildJwks } from "../tokens/discovery.js";
import type { TokenResponse } from "../tokens/token-issuer.js";
import type { HttpRequest, HttpResponse } from "./http-types.js";
import type { OpsRoutes } from "./ops-routes.js";
import { type Params, parseParams } from "./parse-params.js";
import { readBody } from "./read-body.js";
import { NO_STORE, sendJson, sendNoContent, sendOAuthError } from "./rest-response.js";

type RestHandler = (req: HttpRequest, res: HttpResponse) => Promise<void>;

export interface RestRoutes {
  /** The handler for this method and path, "method" when only the method is wrong, or undefined. */
  match(method: string, path: string): RestHandler | "method" | undefined;
}

const AUTHENTICATOR_PATH = "/mfa/authenticators/";

/**
 * The REST transcoding shim (SPEC §2): parse, call the same service function
 * as the RPC, render. No OAuth rule lives here. `opsRoutes` adds the
 * operational endpoints (/healthz, /readyz, /metrics: ops-routes.ts).
 */
export function createRestRoutes(ctx: ServiceContext, opsRoutes: OpsRoutes = {}): RestRoutes {
  const tokenEndpoint = new URL("oauth/token", ctx.config.issuerUrl).href;
  const jwks = buildJwks(ctx.config.signingKeys);
  const discovery = buildDiscoveryDocument(ctx.config.issuerUrl, ctx.config.signingKeys);
  const publicCache = { "cache-control": "public, max-age=300" };

  /** Runs a handler and renders any failure as RFC 6749 §5.2 JSON. */
  const guarded =
    (route: string, handler: RestHandler): RestHandler =>
    async (req, res) => {
      try {
        await handler(req, res);
        ctx.metrics.recordRequest("rest", route, "ok");
      } catch (error) {
        const oauthError = toOAuthError(error, ctx.logger);
        ctx.metrics.recordRequest("rest", route, oauthError.error);
        sendOAuthError(res, oauthError);
      }
    };

  const grantRequestOf = (req: HttpRequest, params: Params): GrantRequest => ({
    params,
    authorization: req.headers.authorization,
    dpopHeader: req.headers.dpop,
    dpopHtu: tokenEndpoint,
  });

  /** RFC 9449 §8.2: in nonce mode every token response carries the current nonce. */
  const tokenHeaders = (): Record<string, string> => {
    const nonce = ctx.dpop.nonceFor(ctx.clock.nowMs());
    return nonce === undefined ? NO_STORE : { ...NO_STORE, "dpop-nonce": nonce };
  };

  const postToken = guarded("/oauth/token", async (req, res) => {
    const params = parseParams(req.headers["content-type"], await readBody(req, res));
    const grantType = params.grant_type;
    if (grantType === undefined || grantType === null || grantType === "") {
      throw oauthErrors.missingParameter("grant_type");
    }
    if (typeof grantType !== "string") throw oauthErrors.notAString("grant_type");
    if (grantType === MFA_OTP_GRANT) {
      const result = await verifyMfaOtp(ctx, grantRequestOf(req, params));
      sendJson(res, 200, renderTokens(result), tokenHeaders());
    } else if (grantType === MFA_RECOVERY_CODE_GRANT) {
      const result = await verifyMfaRecoveryCode(ctx, grantRequestOf(req, params));
      sendJson(
        res,
        200,
        { ...renderTokens(result), recovery_code: result.recoveryCode },
        tokenHeaders(),
      );
    } else {
      throw oauthErrors.unsupportedGrantType(grantType.slice(0, 256));
    }
  });

  const postAssociate = guarded("/mfa/associate", async (req, res) => {
    const params = parseParams(req.headers["content-type"], await readBody(req, res), true);
    const result = await associate(
      ctx,
      bearerTokenOf(req.headers.authorization),
      authenticatorTypesOf(params.authenticator_types),
    );
    sendJson(res, 200, {
      authenticator_type: result.authenticatorType,
      secret: result.secret,
      barcode_uri: result.barcodeUri,
      ...(result.recoveryCodes.length > 0 ? { recovery_codes: result.recoveryCodes } : {}),
    });
  });

  const getAuthenticators = guarded("/mfa/authenticators", async (req, res) => {
    const list = await listAuthenticators(ctx, bearerTokenOf(req.headers.authorization));
    sendJson(
      res,
      200,
      list.map((a) => ({ id: a.id, authenticator_type: a.authenticatorType, active: a.active })),
    );
  });

  const deleteAuthenticatorRoute = guarded("/mfa/authenticators/{id}", async (req, res) => {
    const path = (req.url ?? "").split("?", 1)[0] ?? "";
    let id: string;
    try {
      id = decodeURIComponent(path.slice(AUTHENTICATOR_PATH.length));
    } catch {
      throw oauthErrors.authenticatorNotFound();
    }
    await deleteAuthenticator(ctx, bearerTokenOf(req.headers.authorization), id);
    sendNoContent(res);
  });

  const table: Record<string, Record<string, RestHandler>> = {
    "/oauth/token": { POST: postToken },
    "/mfa/associate": { POST: postAssociate },
    "/mfa/authenticators": { GET: getAuthenticators },
    "/.well-known/jwks.json": { GET: async (_req, res) => sendJson(res, 200, jwks, publicCache) },
    "/.well-known/openid-configuration": {
      GET: async (_req, res) => sendJson(res, 200, discovery, publicCache),
    },
    ...opsRoutes,
  };

  return {
    match(method, path) {
      const routes =
        table[path] ??
        (path.startsWith(AUTHENTICATOR_PATH) && path.length > AUTHENTICATOR_PATH.length
          ? { DELETE: deleteAuthenticatorRoute }
          : undefined);
      if (routes === undefined) return undefined;
      return routes[method] ?? (method === "HEAD" ? routes.GET : undefined) ?? "method";
    },
  };
}

function renderTokens(tokens: TokenResponse): Record<string, unknown> {
  return {
    access_token: tokens.accessToken,
    ...(tokens.idToken ? { id_token: tokens.idToken } : {}),
    scope: tokens.scope,
    expires_in: tokens.expiresIn,
    token_type: tokens.tokenType,
  };
}

/** JSON: an array of strings (or one string); form: a space- or comma-separated list. */
function authenticatorTypesOf(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value;
  if (typeof value === "string") return value.split(/[\s,]+/).filter((v) => v !== "");
  throw oauthErrors.notAString("authenticator_types");
}
