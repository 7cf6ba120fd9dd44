import { type DestinationStream, type Logger, pino } from "pino";
import { currentRequestId } from "./request-context.js";

export type { Logger };

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/**
 * Paths that may hold a secret if some code ever logs a request or a
 * credential object by mistake; pino censors them (defence in depth — the
 * code never logs codes, tokens, secrets, assertions or proofs on purpose,
 * and a test scans the captured log of a whole suite for them).
 */
const REDACT_PATHS = [
  "otp",
  "*.otp",
  "mfa_token",
  "*.mfa_token",
  "mfaToken",
  "*.mfaToken",
  "client_secret",
  "*.client_secret",
  "clientSecret",
  "*.clientSecret",
  "client_assertion",
  "*.client_assertion",
  "recovery_code",
  "*.recovery_code",
  "dpop",
  "*.dpop",
  "secret",
  "*.secret",
  "access_token",
  "*.access_token",
  "id_token",
  "*.id_token",
  "refresh_token",
  "*.refresh_token",
  "refreshToken",
  "*.refreshToken",
  // RFC 7009's parameter: the token a revocation names.
  "token",
  "*.token",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "req.headers.authorization",
  "req.headers.dpop",
];

/**
 * Every line written while serving a request carries its `request_id`
 * (request-context.ts); a field of the same name in the line itself wins.
 * The access line is serialised by hand (access-log.ts) and writes its own.
 * A fresh object each time: pino merges the line's fields into it.
 */
function requestIdMixin(): object {
  const requestId = currentRequestId();
  return requestId === undefined ? {} : { request_id: requestId };
}

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "token-service" },
      mixin: requestIdMixin,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    },
    destination,
  );
}
