/**
 * The part of a call's context the RPC implementations use. connect-es's
 * HandlerContext satisfies it, and so does the unary fast path's, so an
 * implementation runs unchanged on both.
 */
export interface CallHeaders {
  requestHeader: { get(name: string): string | null };
  responseHeader: { set(name: string, value: string): void };
}

/** Sets every header of a record on the call's response. */
export function setResponseHeaders(context: CallHeaders, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) context.responseHeader.set(name, value);
}

/**
 * RPC: a DPoP proof comes in the request's `dpop` field or the `DPoP` header.
 * Both at once are two proofs, which RFC 9449 §4.3 check 1 refuses.
 */
export function dpopProofsOf(field: string, header: string | null): string | string[] | undefined {
  if (field !== "" && header !== null) return [field, header];
  return field !== "" ? field : (header ?? undefined);
}
