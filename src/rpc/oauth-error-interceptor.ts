import { Code, ConnectError, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { toOAuthError } from "../oauth/to-oauth-error.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import { callRecordOf } from "./call-record.js";
import { toConnectError } from "./to-connect-error.js";

/**
 * Runs one call's implementation and returns its result or throws the error
 * the client should see; the same wrapping on connect-es's path (as an
 * interceptor) and on the unary fast path (unary-fast-path.ts). `values` are
 * the call's context values (call-record.ts: the request's access record).
 */
export type CallWrapper = <T>(
  route: string,
  call: () => Promise<T>,
  values?: ContextValues,
) => Promise<T>;

/** Marks an interceptor the unary fast path can run: it knows its CallWrapper form. */
export const FAST_PATH_WRAPPER = Symbol("token-service.fastPathWrapper");

/** An interceptor with the equivalent CallWrapper the unary fast path applies. */
export type WrappingInterceptor = Interceptor & { [FAST_PATH_WRAPPER]: CallWrapper };

/**
 * Turns whatever an implementation throws into the ConnectError the client
 * sees (convert before the error leaves the handler, or connect-es
 * reports a bare internal error), counts each call's outcome and notes it
 * on the request's access record. Errors connect-es raised itself pass
 * through (undecodable input is InvalidArgument; see connect-adapter.ts for
 * binary input).
 */
export function createOAuthErrorInterceptor(logger: Logger, metrics: Metrics): WrappingInterceptor {
  const wrap: CallWrapper = async (route, call, values) => {
    const record = callRecordOf(values);
    try {
      const response = await call();
      metrics.recordRequest("rpc", route, "ok");
      if (record !== undefined) record.rpcCode = 0;
      return response;
    } catch (error) {
      if (error instanceof ConnectError) {
        metrics.recordRequest("rpc", route, `connect_${Code[error.code]}`);
        if (record !== undefined) record.rpcCode = error.code;
        throw error;
      }
      const oauthError = toOAuthError(error, logger, record?.requestId);
      metrics.recordRequest("rpc", route, oauthError.error);
      if (record !== undefined) {
        record.rpcCode = oauthError.code;
        record.error = oauthError.error;
      }
      throw toConnectError(oauthError);
    }
  };
  const interceptor: Interceptor = (next) => (request) =>
    wrap(request.method.name, () => next(request), request.contextValues);
  return Object.assign(interceptor, { [FAST_PATH_WRAPPER]: wrap });
}
