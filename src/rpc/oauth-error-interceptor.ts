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
  return (next) => (request) =>
    callWithOAuthErrors(logger, metrics, request.method.name, () => next(request));
}

/**
 * Runs one RPC's implementation, records its outcome, and turns a thrown
 * OAuthError (or anything unexpected) into the ConnectError the client sees.
 * The interceptor above and the unary fast path (unary-fast-path.ts) share it.
 */
export async function callWithOAuthErrors<T>(
  logger: Logger,
  metrics: Metrics,
  route: string,
  call: () => Promise<T>,
): Promise<T> {
  try {
    const response = await call();
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
