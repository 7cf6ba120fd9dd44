import type { Logger } from "../observability/logger.js";
import { storeOutageLog } from "../observability/store-outage-log.js";
import { StoreUnavailableError } from "../store/store.js";
import { OAuthError, oauthErrors } from "./oauth-error.js";

/**
 * Every failure leaves the service as an OAuthError: domain errors as they
 * are, an unreachable store as row 12 (logged once per outage, with the
 * request that met it first: store-outage-log.ts), anything else as row 13
 * with the cause logged (by name and message only: causes never carry request
 * secrets) and never sent.
 */
export function toOAuthError(error: unknown, logger: Logger, requestId?: string): OAuthError {
  if (error instanceof OAuthError) {
    if (error.status >= 500) logCause(logger, error, error.cause);
    return error;
  }
  if (error instanceof StoreUnavailableError) {
    storeOutageLog(logger).unavailable(error, requestId);
    return oauthErrors.temporarilyUnavailable(error);
  }
  const internal = oauthErrors.serverError(error);
  logCause(logger, internal, error);
  return internal;
}

function logCause(logger: Logger, error: OAuthError, cause: unknown): void {
  const detail =
    cause instanceof Error
      ? { name: cause.name, message: cause.message, stack: cause.stack }
      : { cause: String(cause) };
  logger.error({ event: "request_failed", error: error.error, cause: detail }, error.description);
}
