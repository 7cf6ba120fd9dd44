import { oauthErrors } from "../oauth/oauth-error.js";
import type { HttpRequest, HttpResponse, RequestHandler } from "./http-types.js";
import { sendJson, sendOAuthError } from "./rest-response.js";
import type { RestRoutes } from "./rest-routes.js";

/**
 * One handler for both wire protocols: REST routes first (a table lookup on
 * the path), everything else to the Connect adapter, which serves Connect,
 * gRPC and gRPC-Web and answers unknown RPC paths itself.
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
    } else if (route === "method") {
      req.resume();
      sendJson(
        res,
        405,
        { error: "invalid_request", error_description: "Method not allowed" },
        { "cache-control": "no-store" },
      );
    } else {
      route(req, res).catch(() => {
        // `guarded` renders every failure; this only catches a write after the socket closed.
        if (!res.headersSent) sendOAuthError(res, oauthErrors.serverError());
      });
    }
  };
}
