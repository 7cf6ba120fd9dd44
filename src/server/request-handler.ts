import { oauthErrors } from "../oauth/oauth-error.js";
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
): RequestHandler {
  return (req, res) => {
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query < 0 ? url : url.slice(0, query);
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
