import type { HttpRequest, HttpResponse, RequestHandler } from "./http-types.js";
import { createOpsHandler } from "./management-server.js";
import type { OpsRoutes } from "./ops-routes.js";

/**
 * The internal listener's handler (INTERNAL_PORT, SPEC §2): `/healthz` and
 * `/readyz` for probes, everything else to the Connect adapter that serves
 * token.v1.MfaTokenService with gRPC health and reflection (an unknown path
 * is row 19's 404, an unknown gRPC method Unimplemented, as on the public
 * port). No REST route and no CORS: browsers have no business here.
 */
export function createInternalRequestHandler(
  ops: OpsRoutes,
  connect: (req: HttpRequest, res: HttpResponse) => void,
): RequestHandler {
  const opsHandler = createOpsHandler(ops);
  return (req, res) => {
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query < 0 ? url : url.slice(0, query);
    if (Object.hasOwn(ops, path)) opsHandler(req, res);
    else connect(req, res);
  };
}
