import { type ContextValues, createContextKey, createContextValues } from "@connectrpc/connect";
import { type AccessRecord, accessRecordOf } from "../observability/access-record.js";
import type { HttpResponse } from "../server/http-types.js";

/**
 * How an RPC call reaches its request's AccessRecord: through the call's
 * context values (connect-es hands them to interceptors and to the
 * implementation's HandlerContext as `values`; the unary fast path builds
 * the same), so interceptors and the client-authenticated hook can fill in
 * the code, the OAuth error and the client.
 */
const CALL_RECORD = createContextKey<AccessRecord | undefined>(undefined, {
  description: "token-service access record",
});

/** The context values of a call answered on `res`. */
export function callValuesFor(res: HttpResponse): ContextValues {
  return createContextValues().set(CALL_RECORD, accessRecordOf(res));
}

/** The AccessRecord of a call (undefined for calls made without one, e.g. in unit tests). */
export function callRecordOf(values: ContextValues | undefined): AccessRecord | undefined {
  return values?.get(CALL_RECORD);
}

/** Adds the request's AccessRecord to a call's context values (both serving paths call this). */
export function withCallRecord(values: ContextValues, res: HttpResponse): ContextValues {
  return values.set(CALL_RECORD, accessRecordOf(res));
}
