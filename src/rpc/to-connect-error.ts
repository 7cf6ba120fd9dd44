import { ConnectError } from "@connectrpc/connect";
import { OAuthErrorSchema } from "@token-service/client";
import type { OAuthError } from "../oauth/oauth-error.js";
import { NO_STORE } from "../service/response-headers.js";

/**
 * The RPC renderer of OAuthError: the row's Connect code, the description as
 * message, the error's headers (plus no-store) as metadata, and a typed
 * `token.v1.OAuthError` detail with exactly the REST body's values.
 */
export function toConnectError(error: OAuthError): ConnectError {
  const metadata = new Headers({ ...NO_STORE, ...error.headers });
  if (error.retryAfterSeconds !== undefined) {
    metadata.set("retry-after", String(error.retryAfterSeconds));
  }
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
