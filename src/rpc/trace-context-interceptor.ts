import type { Interceptor } from "@connectrpc/connect";
import { context } from "@opentelemetry/api";
import { withRequestScope } from "../observability/request-context.js";
import { callRecordOf } from "./call-record.js";
import {
  type CallWrapper,
  FAST_PATH_WRAPPER,
  type WrappingInterceptor,
} from "./oauth-error-interceptor.js";

/**
 * Runs each RPC call inside its request's scopes: the request id's (every
 * log line the call writes carries it: request-context.ts) and, tracing on,
 * the trace context (the store round trips and signing it causes are
 * children of the request's server span). Needed on the unary fast path: it
 * gets the body through stream callbacks, which run in the socket's async
 * context, not the request's. First among the interceptors, so the error
 * interceptor's lines are inside both.
 */
export function createTraceContextInterceptor(): WrappingInterceptor {
  const wrap: CallWrapper = (_route, call, values) => {
    const record = callRecordOf(values);
    if (record === undefined) return call();
    const scoped = () => withRequestScope(record, call);
    return record.traceContext === undefined ? scoped() : context.with(record.traceContext, scoped);
  };
  const interceptor: Interceptor = (next) => (request) =>
    wrap(request.method.name, () => next(request), request.contextValues);
  return Object.assign(interceptor, { [FAST_PATH_WRAPPER]: wrap });
}
