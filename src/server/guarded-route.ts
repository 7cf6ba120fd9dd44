import { toOAuthError } from "../oauth/to-oauth-error.js";
import { accessRecordOf } from "../observability/access-record.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { HttpRequest, HttpResponse } from "./http-types.js";
import { sendOAuthError } from "./rest-response.js";

export type RouteHandler = (req: HttpRequest, res: HttpResponse) => Promise<void>;

/**
 * The one place a REST handler's failure becomes its answer: the outcome is
 * counted (`ok` or the OAuth error code) and any failure is rendered as
 * RFC 6749 §5.2 JSON (unexpected ones as row 13, their cause logged).
 */
export function createRouteGuard(deps: { metrics: Metrics; logger: Logger }) {
  return (route: string, handler: RouteHandler): RouteHandler =>
    async (req, res) => {
      try {
        await handler(req, res);
        deps.metrics.recordRequest("rest", route, "ok");
      } catch (error) {
        const oauthError = toOAuthError(error, deps.logger, accessRecordOf(res)?.requestId);
        deps.metrics.recordRequest("rest", route, oauthError.error);
        sendOAuthError(res, oauthError);
      }
    };
}
