import { inSpan } from "../observability/tracing.js";
import { signJwt } from "./jwt-signer.js";
import type { SigningKey } from "./signing-keys.js";

/**
 * signJwt as a child span of the request (`sign access_token`, `sign
 * id_token`) when tracing is on: the signature is the largest CPU cost of a
 * verify, worth seeing in a trace. Tracing off, it is signJwt plus one check.
 */
export function signJwtTraced(
  token: "access_token" | "id_token",
  key: SigningKey,
  typ: string,
  payload: Record<string, unknown>,
): string {
  return inSpan(`sign ${token}`, () => signJwt(key, typ, payload));
}
