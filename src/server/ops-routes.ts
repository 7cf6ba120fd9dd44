import type { MetricsText } from "../observability/metrics-cache.js";
import type { Readiness } from "../observability/store-health.js";
import type { HttpRequest, HttpResponse } from "./http-types.js";
import { sendJson } from "./rest-response.js";

export type OpsHandler = (req: HttpRequest, res: HttpResponse) => Promise<void>;
/** Path → method → handler, the shape of the REST routes table. */
export type OpsRoutes = Record<string, Record<string, OpsHandler>>;

export interface OpsRoutesOptions {
  readiness: Readiness;
  /** Serves GET /metrics when given. */
  metrics?: () => Promise<MetricsText>;
}

/**
 * The operational endpoints, served on the management listener and (without
 * /metrics unless PUBLIC_METRICS=true) on the public port:
 * - GET /healthz: liveness, always 200 while the process serves;
 * - GET /readyz: 200 while the store answered its last background ping, else
 *   503 with `Retry-After` (store-health.ts; also from the moment a stop
 *   begins): reading a flag, so probes cost nothing;
 * - GET /metrics: Prometheus text, rendered at most once a second.
 */
export function createOpsRoutes(options: OpsRoutesOptions): OpsRoutes {
  const { readiness, metrics } = options;
  const routes: OpsRoutes = {
    "/healthz": { GET: async (_req, res) => sendJson(res, 200, { status: "ok" }, {}) },
    "/readyz": {
      GET: async (_req, res) =>
        readiness.ready
          ? sendJson(res, 200, { status: "ready" }, {})
          : // SPEC §6: every 503 carries Retry-After (the next background ping is a second away).
            sendJson(res, 503, { status: "unavailable" }, { "retry-after": "1" }),
    },
  };
  if (metrics !== undefined) {
    routes["/metrics"] = {
      GET: async (_req, res) => {
        const { contentType, body } = await metrics();
        res.writeHead(200, { "content-type": contentType, "content-length": String(body.length) });
        res.end(body);
      },
    };
  }
  return routes;
}
