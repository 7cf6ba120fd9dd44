import type { Interceptor } from "@connectrpc/connect";
import { context } from "@opentelemetry/api";
import { callRecordOf } from "./call-record.js";
import {
  type CallWrapper,
  FAST_PATH_WRAPPER,
  type WrappingInterceptor,
} from "./oauth-error-interceptor.js";

/**
 * Runs each RPC call inside its request's trace context (tracing on), so the
 * store round trips and signing it causes are children of the request's
 * server span. Needed on the unary fast path: it gets the body through
 * stream callbacks, which run in the socket's async context, not the
 * request's. Tracing off (no context on the record): a plain call.
 */
export function createTraceContextInterceptor(): WrappingInterceptor {
  const wrap: CallWrapper = (_route, call, values) => {
    const traceContext = callRecordOf(values)?.traceContext;
    return traceContext === undefined ? call() : context.with(traceContext, call);
  };
  const interceptor: Interceptor = (next) => (request) =>
    wrap(request.method.name, () => next(request), request.contextValues);
  return Object.assign(interceptor, { [FAST_PATH_WRAPPER]: wrap });
}
