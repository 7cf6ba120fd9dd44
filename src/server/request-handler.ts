import { oauthErrors } from "../oauth/oauth-error.js";
import type { Cors } from "./cors.js";
import type { HttpRequest, HttpResponse, RequestHandler } from "./http-types.js";
import { sendOAuthError } from "./rest-response.js";
import type { RestRoutes } from "./rest-routes.js";

/**
 * One handler for both wire protocols: REST routes first (a table lookup on
 * the path), everything else to the Connect adapter, which serves Connect,
 * gRPC and gRPC-Web. A known REST path with another method is 405 with
 * `Allow`; a path neither knows is 404 (the adapter calls `notFound`); both
 * with an OAuth JSON body, like every other error.
 */
export function createRequestHandler(
  rest: RestRoutes,
  connect: (req: HttpRequest, res: HttpResponse) => void,
  cors: Cors,
): RequestHandler {
  return (req, res) => {
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query < 0 ? url : url.slice(0, query);
    if (req.headers.origin !== undefined && isBrowserPath(path)) {
      if (cors.isPreflight(req)) {
        cors.answerPreflight(req, res);
        return;
      }
      // Routes that authenticate a client allow only that client's origins (they
      // add the header once it is known); the others, any client's.
      if (!authenticatesClient(path)) cors.allowIfAnyClient(req, res);
    }
    const route = rest.match(req.method ?? "GET", path);
    if (route === undefined) {
      connect(req, res);
    } else if (typeof route === "object") {
      req.resume();
      sendOAuthError(res, oauthErrors.invalidRequest.methodNotAllowed(route.allow));
    } else {
      route(req, res).catch(() => {
        // `guarded` renders every failure; this only catches a write after the socket closed.
        if (!res.headersSent) sendOAuthError(res, oauthErrors.serverError());
      });
    }
  };
}

/** Row 19 for a path no route and no RPC answers. */
export function sendNotFound(req: HttpRequest, res: HttpResponse): void {
  req.resume();
  sendOAuthError(res, oauthErrors.notFound.route());
}

/** Paths browsers may call (CORS): the token and revocation endpoints, the MFA API, every RPC. */
function isBrowserPath(path: string): boolean {
  return (
    path === "/oauth/token" ||
    path === "/oauth/revoke" ||
    path.startsWith("/mfa/") ||
    path.startsWith("/token.v1.") ||
    path.startsWith("/grpc.")
  );
}

/** Paths whose requests authenticate a client (RFC 6749 §2.3). */
function authenticatesClient(path: string): boolean {
  return (
    path === "/oauth/token" ||
    path === "/oauth/revoke" ||
    path === "/mfa/challenge" ||
    path.startsWith("/token.v1.TokenService/") ||
    path === "/token.v1.MfaService/Challenge"
  );
}
