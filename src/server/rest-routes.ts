import type { ClientCredentials } from "../oauth/client-auth.js";
import type { RegisteredClient } from "../oauth/client-registry.js";
import { oauthErrors } from "../oauth/oauth-error.js";
import { presentedFromHeader } from "../oauth/protected-resource.js";
import { accessRecordOf, noteClient } from "../observability/access-record.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import { buildDiscoveryDocument, buildJwks } from "../service/discovery.js";
import { mfaApiCredentialOf } from "../service/mfa-api-caller.js";
import { tokenResponseHeaders } from "../service/response-headers.js";
import type { Services } from "../service/services.js";
import type { TokenRequest, TokenResult } from "../service/token-endpoint.js";
import { wireString } from "../service/wire-values.js";
import type { SigningKey } from "../tokens/signing-keys.js";
import { derived } from "../util/derived.js";
import { AUTH0_FORWARDED_FOR, type ClientAddressOf } from "./client-address.js";
import type { Cors } from "./cors.js";
import { createRouteGuard } from "./guarded-route.js";
import type { HttpRequest, HttpResponse } from "./http-types.js";
import type { OpsRoutes } from "./ops-routes.js";
import { type Params, parseParams } from "./parse-params.js";
import { readBody } from "./read-body.js";
import { sendEmptyOk, sendJson, sendNoContent } from "./rest-response.js";

type RestHandler = (req: HttpRequest, res: HttpResponse) => Promise<void>;

/** What the REST table has at a path: a handler for the method, or the methods it allows. */
export type RestMatch = RestHandler | { allow: readonly string[] } | undefined;

export interface RestRoutes {
  match(method: string, path: string): RestMatch;
  /** The route template a path belongs to (`/mfa/authenticators/{id}`), or undefined. */
  routeOf(path: string): string | undefined;
}

export interface RestRoutesDeps {
  services: Services;
  cors: Cors;
  issuerUrl: string;
  /** Read per request: a reload swaps the keys (SIGHUP). */
  signingKeys: () => readonly SigningKey[];
  /** The operational endpoints this listener serves (/healthz, /readyz, maybe /metrics). */
  opsRoutes: OpsRoutes;
  metrics: Metrics;
  logger: Logger;
  /** The client's address (TRUST_PROXY decides whether X-Forwarded-For counts). */
  clientAddressOf: ClientAddressOf;
}

const AUTHENTICATOR_PATH = "/mfa/authenticators/";
/** The token endpoint's parameters besides client authentication (read only if a grant needs them). */
const TOKEN_PARAMETERS = ["mfa_token", "otp", "recovery_code", "refresh_token", "scope"] as const;

/**
 * The REST transcoding shim: parse, call the same service function as the
 * RPC, render. No OAuth rule lives here.
 */
export function createRestRoutes(deps: RestRoutesDeps): RestRoutes {
  const { services, issuerUrl } = deps;
  const tokenEndpointUrl = new URL("oauth/token", issuerUrl).href;
  const jwks = derived(deps.signingKeys, buildJwks);
  const discovery = derived(deps.signingKeys, (keys) =>
    buildDiscoveryDocument(issuerUrl, keys, services.grants.uris),
  );
  // Public documents: any page may read them (OpenID Connect clients in browsers fetch both).
  const publicCache = {
    "cache-control": "public, max-age=300",
    "access-control-allow-origin": "*",
  };
  /** Allows the request's origin once the client is known, if that client lists it. */
  const allowClientOrigin = (req: HttpRequest, res: HttpResponse) => (client: RegisteredClient) => {
    noteClient(accessRecordOf(res), client.clientId);
    const origin = typeof req.headers.origin === "string" ? req.headers.origin : undefined;
    for (const [name, value] of Object.entries(deps.cors.headersForClient(origin, client))) {
      res.setHeader(name, value);
    }
  };
  /** RFC 9449 §4.3 check 9: the URL a proof names is the issuer's origin with the request's path. */
  const htuOf = (path: string) => new URL(path.slice(1), issuerUrl).href;

  const guarded = createRouteGuard(deps);

  const postToken = guarded("/oauth/token", async (req, res) => {
    // Read first: once the body is in, the client may already have closed the socket.
    const clientAddress = deps.clientAddressOf(req);
    const params = parseParams(req.headers["content-type"], await readBody(req, res));
    const result = await services.tokenEndpoint.exchange({
      ...tokenRequestOf(req, params, clientAddress),
      onClientAuthenticated: allowClientOrigin(req, res),
    });
    sendJson(res, 200, renderTokenResult(result), tokenResponseHeaders(result));
  });

  const tokenRequestOf = (
    req: HttpRequest,
    params: Params,
    clientAddress: string,
  ): TokenRequest => {
    const forwardedFor = req.headers[AUTH0_FORWARDED_FOR];
    const grantParams: Partial<Record<(typeof TOKEN_PARAMETERS)[number], unknown>> = {};
    for (const name of TOKEN_PARAMETERS) grantParams[name] = wireString(params[name]);
    return {
      grantType: wireString(params.grant_type),
      client: clientCredentialsOf(req, params),
      params: grantParams as TokenRequest["params"],
      dpop: { proofs: req.headers.dpop, htu: tokenEndpointUrl },
      clientAddress,
      ...(typeof forwardedFor === "string" ? { auth0ForwardedFor: forwardedFor } : {}),
    };
  };

  const postChallenge = guarded("/mfa/challenge", async (req, res) => {
    const params = parseParams(req.headers["content-type"], await readBody(req, res));
    const result = await services.challenge({
      client: clientCredentialsOf(req, params),
      mfaToken: wireString(params.mfa_token),
      challengeType: wireString(params.challenge_type),
      authenticatorId: wireString(params.authenticator_id),
      onClientAuthenticated: allowClientOrigin(req, res),
    });
    sendJson(res, 200, { challenge_type: result.challengeType });
  });

  const postRevoke = guarded("/oauth/revoke", async (req, res) => {
    const params = parseParams(req.headers["content-type"], await readBody(req, res));
    await services.revokeToken({
      client: clientCredentialsOf(req, params),
      token: wireString(params.token),
      tokenTypeHint: wireString(params.token_type_hint),
      onClientAuthenticated: allowClientOrigin(req, res),
    });
    sendEmptyOk(res);
  });

  const postAssociate = guarded("/mfa/associate", async (req, res) => {
    const params = parseParams(req.headers["content-type"], await readBody(req, res), true);
    const presented = presentedFromHeader(req.headers.authorization);
    const result = await services.associate({
      mfaToken: presented?.scheme === "Bearer" ? presented.token : undefined,
      authenticatorTypes: authenticatorTypesOf(params.authenticator_types),
    });
    sendJson(res, 200, {
      authenticator_type: result.authenticatorType,
      secret: result.secret,
      barcode_uri: result.barcodeUri,
      ...(result.recoveryCodes.length > 0 ? { recovery_codes: result.recoveryCodes } : {}),
    });
  });

  const getAuthenticators = guarded("/mfa/authenticators", async (req, res) => {
    const credential = mfaApiCredentialOf(presentedFromHeader(req.headers.authorization), {
      dpopProof: req.headers.dpop,
      htm: req.method ?? "GET",
      htu: htuOf("/mfa/authenticators"),
    });
    const list = await services.listAuthenticators(credential);
    // `type` is Auth0's optional field, present here because Auth0's browser
    // SDK (auth0-spa-js's mfa.getAuthenticators) keeps only entries whose
    // `type` matches the challenge types (SPEC §3); REST only, the proto
    // message names it once (`authenticator_type`).
    sendJson(
      res,
      200,
      list.map((a) => ({
        id: a.id,
        authenticator_type: a.authenticatorType,
        active: a.active,
        type: a.authenticatorType,
      })),
    );
  });

  const deleteAuthenticator = guarded("/mfa/authenticators/{id}", async (req, res) => {
    const path = pathOf(req.url ?? "");
    const rawId = path.slice(AUTHENTICATOR_PATH.length);
    let id: string;
    try {
      id = decodeURIComponent(rawId);
    } catch {
      // Not a valid percent-encoding: matches no authenticator (404 once authorised).
      id = rawId;
    }
    await services.deleteAuthenticator({
      credential: {
        presented: presentedFromHeader(req.headers.authorization),
        dpopProof: req.headers.dpop,
        htm: "DELETE",
        htu: htuOf(path),
      },
      authenticatorId: id,
    });
    sendNoContent(res);
  });

  const table: Record<string, Record<string, RestHandler>> = {
    "/oauth/token": { POST: postToken },
    "/mfa/challenge": { POST: postChallenge },
    "/oauth/revoke": { POST: postRevoke },
    "/mfa/associate": { POST: postAssociate },
    "/mfa/authenticators": { GET: getAuthenticators },
    "/.well-known/jwks.json": { GET: async (_req, res) => sendJson(res, 200, jwks(), publicCache) },
    "/.well-known/openid-configuration": {
      GET: async (_req, res) => sendJson(res, 200, discovery(), publicCache),
    },
    ...deps.opsRoutes,
  };
  const authenticatorRoutes: Record<string, RestHandler> = { DELETE: deleteAuthenticator };

  const isAuthenticatorPath = (path: string) =>
    path.startsWith(AUTHENTICATOR_PATH) && path.length > AUTHENTICATOR_PATH.length;

  return {
    routeOf(path) {
      if (Object.hasOwn(table, path)) return path;
      return isAuthenticatorPath(path) ? "/mfa/authenticators/{id}" : undefined;
    },
    match(method, path) {
      const routes = table[path] ?? (isAuthenticatorPath(path) ? authenticatorRoutes : undefined);
      if (routes === undefined) return undefined;
      const handler = routes[method] ?? (method === "HEAD" ? routes.GET : undefined);
      if (handler !== undefined) return handler;
      const allow = Object.keys(routes);
      return { allow: routes.GET !== undefined ? [...allow, "HEAD"] : allow };
    },
  };
}

/** Client authentication as the body and `Authorization` present it (RFC 6749 §2.3). */
function clientCredentialsOf(req: HttpRequest, params: Params): ClientCredentials {
  return {
    clientId: wireString(params.client_id),
    clientSecret: wireString(params.client_secret),
    clientAssertion: wireString(params.client_assertion),
    clientAssertionType: wireString(params.client_assertion_type),
    authorization: req.headers.authorization,
  };
}

function pathOf(url: string): string {
  const query = url.indexOf("?");
  return query < 0 ? url : url.slice(0, query);
}

function renderTokenResult(result: TokenResult): Record<string, unknown> {
  const { tokens } = result;
  return {
    access_token: tokens.accessToken,
    ...(result.refreshToken !== undefined ? { refresh_token: result.refreshToken } : {}),
    ...(tokens.idToken ? { id_token: tokens.idToken } : {}),
    scope: tokens.scope,
    expires_in: tokens.expiresIn,
    token_type: tokens.tokenType,
    ...(result.recoveryCode !== undefined ? { recovery_code: result.recoveryCode } : {}),
  };
}

/** JSON: an array of strings (or one string); form: a space- or comma-separated list. */
function authenticatorTypesOf(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value;
  if (typeof value === "string") return value.split(/[\s,]+/).filter((v) => v !== "");
  throw oauthErrors.invalidRequest.notAString("authenticator_types");
}
