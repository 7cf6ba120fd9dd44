import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { OAuthErrorSchema } from "@token-service/client";
import type { OAuthError } from "../oauth/oauth-error.js";
import { toOAuthError } from "../oauth/to-oauth-error.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";

/**
 * The RPC renderer of OAuthError (SPEC §3, §5): the row's Connect code, the
 * description as message, and a typed `token.v1.OAuthError` detail with the
 * REST body's exact values (NOTES: convert before the error leaves the
 * handler, or connect-es reports a bare internal error). Errors connect-es
 * raised itself pass through (undecodable input is InvalidArgument; see
 * connect-adapter.ts for binary input).
 */
export function createOAuthErrorInterceptor(logger: Logger, metrics: Metrics): Interceptor {
  return (next) => async (request) => {
    const route = request.method.name;
    try {
      const response = await next(request);
      metrics.recordRequest("rpc", route, "ok");
      return response;
    } catch (error) {
      if (error instanceof ConnectError) {
        metrics.recordRequest("rpc", route, `connect_${Code[error.code]}`);
        throw error;
      }
      const oauthError = toOAuthError(error, logger);
      metrics.recordRequest("rpc", route, oauthError.error);
      throw toConnectError(oauthError);
    }
  };
}

export function toConnectError(error: OAuthError): ConnectError {
  const metadata = new Headers({ "cache-control": "no-store", ...error.headers });
  if (error.retryAfterSeconds !== undefined)
    metadata.set("retry-after", String(error.retryAfterSeconds));
  return new ConnectError(error.description, error.code, metadata, [
    {
      desc: OAuthErrorSchema,
      value: {
        error: error.error,
        errorDescription: error.description,
        retryAfterSeconds: error.retryAfterSeconds ?? 0,
      },
    },
  ]);
}
