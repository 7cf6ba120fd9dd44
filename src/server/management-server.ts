import type { RequestHandler } from "./http-types.js";
import {
  createOnePortServer,
  type OnePortServer,
  type OnePortServerOptions,
} from "./one-port-server.js";
import type { OpsRoutes } from "./ops-routes.js";
import { sendJson } from "./rest-response.js";

/**
 * The management listener (MANAGEMENT_PORT, on 127.0.0.1 unless
 * MANAGEMENT_HOST says otherwise): /metrics, /healthz and /readyz away from
 * the public port, so scrapes and probes do not compete with logins and the
 * metrics need not be exposed to clients. Same one-port server (HTTP/1.1 and
 * h2c) and the same limits as the public port.
 */
export function createManagementServer(
  routes: OpsRoutes,
  options: OnePortServerOptions = {},
): OnePortServer {
  return createOnePortServer(createOpsHandler(routes), options);
}

/** Routes a request to `routes`: 404 for an unknown path, 405 (with Allow) for another method. */
export function createOpsHandler(routes: OpsRoutes): RequestHandler {
  return (req, res) => {
    // Nothing here reads a body: drain whatever comes.
    req.resume();
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const byMethod = routes[query < 0 ? url : url.slice(0, query)];
    if (byMethod === undefined) {
      sendJson(res, 404, { error: "not_found", error_description: "Not found" }, {});
      return;
    }
    const method = req.method ?? "GET";
    const handler = byMethod[method] ?? (method === "HEAD" ? byMethod.GET : undefined);
    if (handler === undefined) {
      sendJson(
        res,
        405,
        { error: "invalid_request", error_description: "Method not allowed" },
        { allow: Object.keys(byMethod).join(", ") },
      );
      return;
    }
    handler(req, res).catch(() => {
      if (!res.headersSent)
        sendJson(res, 500, { error: "server_error", error_description: "Internal error" }, {});
      else res.destroy();
    });
  };
}
