/**
 * RFC 6749 §5.1: responses that carry or concern a credential (token
 * responses and their errors, the MFA API) MUST NOT be cached. Both surfaces
 * send these headers; nothing else writes them.
 */
export const NO_STORE: Readonly<Record<string, string>> = {
  "cache-control": "no-store",
  pragma: "no-cache",
};

/** The headers of a successful token response: no-store and, in nonce mode, `DPoP-Nonce` (RFC 9449 §8.2). */
export function tokenResponseHeaders(result: { dpopNonce?: string }): Record<string, string> {
  return result.dpopNonce === undefined
    ? { ...NO_STORE }
    : { ...NO_STORE, "dpop-nonce": result.dpopNonce };
}
