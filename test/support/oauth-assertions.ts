/**
 * Assertions on the service's errors, exactly as the error reference states
 * them: the REST status and `{error, error_description}` body with
 * `Cache-Control: no-store`, and the RPC's Connect code, message and typed
 * `token.v1.OAuthError` detail.
 */
import assert from "node:assert/strict";
import { type Code, ConnectError } from "@connectrpc/connect";
import { OAuthErrorSchema } from "@token-service/client";

/** A REST answer: status, headers and the parsed JSON body (null when there is none). */
export interface RestResult<B = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: B;
}

/** Exact status and `{error, error_description}` body; `Cache-Control: no-store`. */
export function assertOAuthError(
  result: RestResult<unknown>,
  status: number,
  error: string,
  description: string,
): void {
  assert.deepEqual(
    { status: result.status, body: result.body },
    { status, body: { error, error_description: description } },
  );
  assert.equal(result.headers.get("cache-control"), "no-store");
}

/** Row 6. */
export function assertExpired(result: RestResult<unknown>): void {
  assertOAuthError(result, 400, "expired_token", "mfa_token is expired");
}

/** Row 8 with this `Retry-After`. */
export function assertLocked(result: RestResult<unknown>, retryAfter: string): void {
  assertOAuthError(result, 429, "too_many_attempts", "Too many failed attempts. Try again later.");
  assert.equal(result.headers.get("retry-after"), retryAfter);
}

/** What an RPC failure carries: its Connect code, message, typed detail and metadata. */
export interface RpcFailure {
  code: Code;
  message: string;
  detail: { error: string; errorDescription: string; retryAfterSeconds: number } | undefined;
  /** Response headers and trailers of the failed call. */
  metadata: Headers;
}

/** What a rejected RPC's error carries (at most one OAuthError detail). */
export function rpcFailureOf(error: unknown): RpcFailure {
  const connectError = ConnectError.from(error);
  const details = connectError.findDetails(OAuthErrorSchema);
  assert.ok(details.length <= 1, "at most one OAuthError detail");
  const [detail] = details;
  return {
    code: connectError.code,
    message: connectError.rawMessage,
    detail:
      detail === undefined
        ? undefined
        : {
            error: detail.error,
            errorDescription: detail.errorDescription,
            retryAfterSeconds: detail.retryAfterSeconds,
          },
    metadata: connectError.metadata,
  };
}

/** Awaits a call that must fail and returns what its error carries. */
export async function rpcFailure(call: Promise<unknown>): Promise<RpcFailure> {
  try {
    await call;
  } catch (error) {
    return rpcFailureOf(error);
  }
  return assert.fail("the call succeeded, an error was expected");
}

/**
 * The row's Connect code, the description as message, and the OAuthError
 * detail with the REST values (retryAfterSeconds 0 unless given); returns
 * the error's metadata.
 */
export async function assertRpcError(
  call: Promise<unknown>,
  code: Code,
  error: string,
  description: string,
  retryAfterSeconds = 0,
): Promise<Headers> {
  const failure = await rpcFailure(call);
  assert.deepEqual(
    { code: failure.code, message: failure.message, detail: failure.detail },
    {
      code,
      message: description,
      detail: { error, errorDescription: description, retryAfterSeconds },
    },
  );
  return failure.metadata;
}
