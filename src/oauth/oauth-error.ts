import { Code } from "@connectrpc/connect";

/**
 * The one error type of the OAuth/MFA domain. Every failure a caller may see is
 * one of the rows of SPEC §5, built by the factories below so the byte-exact
 * Auth0 strings live in one place. Two renderers turn it into a REST body
 * (src/server/rest-error.ts) and a ConnectError with a typed `token.v1.OAuthError`
 * detail (src/rpc/to-connect-error.ts). `cause` is logged, never sent.
 */
export class OAuthError extends Error {
  override readonly name = "OAuthError";
  /** Extra response headers (e.g. `DPoP-Nonce`, RFC 9449 §8); both renderers send them. */
  readonly headers: Record<string, string> = {};

  constructor(
    /** RFC 6749 §5.2 / Auth0 `error` code. */
    readonly error: string,
    /** Client-safe `error_description`, byte-exact with Auth0. */
    readonly description: string,
    /** REST status. */
    readonly status: number,
    /** Connect code for the RPC surface. */
    readonly code: Code,
    /** Whole seconds for `Retry-After` (row 8 only). */
    readonly retryAfterSeconds?: number,
    options?: { cause?: unknown },
  ) {
    super(`${error}: ${description}`, options);
  }
}

export const MFA_OTP_GRANT = "http://auth0.com/oauth/grant-type/mfa-otp";
export const MFA_RECOVERY_CODE_GRANT = "http://auth0.com/oauth/grant-type/mfa-recovery-code";

/** SPEC §5, row by row. */
export const oauthErrors = {
  /** Row 1. */
  unauthorizedClient: () =>
    new OAuthError("access_denied", "Unauthorized", 401, Code.Unauthenticated),
  /** Row 2. */
  grantNotAllowed: (grant: string) =>
    new OAuthError(
      "unauthorized_client",
      `Grant type '${grant}' not allowed for the client.`,
      403,
      Code.PermissionDenied,
    ),
  /** Row 3 (also `grant_type`, `recovery_code`, a missing bearer on /mfa/*). */
  missingParameter: (name: string) =>
    new OAuthError(
      "invalid_request",
      `Missing required parameter: ${name}`,
      400,
      Code.InvalidArgument,
    ),
  /** Row 4. */
  notAString: (name: string) =>
    new OAuthError("invalid_request", `${name} must be a string`, 400, Code.InvalidArgument),
  /** Row 5. */
  malformedMfaToken: () =>
    new OAuthError("invalid_grant", "Malformed mfa_token", 400, Code.FailedPrecondition),
  /** Row 6. */
  expiredMfaToken: () =>
    new OAuthError("expired_token", "mfa_token is expired", 400, Code.FailedPrecondition),
  /** Row 7. */
  mfaTokenOtherClient: () =>
    new OAuthError(
      "invalid_request",
      "mfa_token not issued to this client",
      400,
      Code.InvalidArgument,
    ),
  /** Row 8. */
  tooManyAttempts: (retryAfterSeconds: number) =>
    new OAuthError(
      "too_many_attempts",
      "Too many failed attempts. Try again later.",
      429,
      Code.ResourceExhausted,
      retryAfterSeconds,
    ),
  /** Row 9. */
  invalidOtp: () =>
    new OAuthError("invalid_grant", "Invalid otp_code.", 400, Code.FailedPrecondition),
  /** Row 10. */
  unsupportedGrantType: (grant: string) =>
    new OAuthError(
      "unsupported_grant_type",
      `Unsupported grant type: ${grant}`,
      400,
      Code.InvalidArgument,
    ),
  /** Row 11. */
  invalidDpopProof: (reason: string) =>
    new OAuthError("invalid_dpop_proof", reason, 400, Code.InvalidArgument),
  /** Row 12. */
  temporarilyUnavailable: (cause?: unknown) =>
    new OAuthError(
      "temporarily_unavailable",
      "Service temporarily unavailable",
      503,
      Code.Unavailable,
      undefined,
      { cause },
    ),
  /** Row 13. */
  serverError: (cause?: unknown) =>
    new OAuthError("server_error", "Internal error", 500, Code.Internal, undefined, { cause }),
  /** Row 14: malformed body (400), wrong content type (415), too large (413). */
  badBody: (status: 400 | 413 | 415, reason: string) =>
    new OAuthError("invalid_request", reason, status, Code.InvalidArgument),
  /** Row 15. */
  alreadyEnrolled: () =>
    new OAuthError("access_denied", "User is already enrolled.", 403, Code.PermissionDenied),
  /** Row 16. */
  invalidRecoveryCode: () =>
    new OAuthError("invalid_grant", "Invalid recovery_code.", 400, Code.FailedPrecondition),
  /** Row 17. */
  authenticatorNotFound: () =>
    new OAuthError("not_found", "Authenticator not found", 404, Code.NotFound),
  /** Row 21: expired, revoked, reused, unknown, malformed or another client's refresh token. */
  invalidRefreshToken: (cause?: unknown) =>
    new OAuthError(
      "invalid_grant",
      "Unknown or invalid refresh token.",
      400,
      Code.FailedPrecondition,
      undefined,
      { cause },
    ),
  /** Row 22: a refresh `scope` wider than the one granted (RFC 6749 §6). */
  scopeExceedsGrant: () =>
    new OAuthError(
      "invalid_scope",
      "The requested scope exceeds the scope granted.",
      400,
      Code.InvalidArgument,
    ),
  /** IssueMfaToken with an unknown client (SPEC §5, RPC surface). */
  unknownClient: () =>
    new OAuthError("invalid_request", "Unknown client", 400, Code.InvalidArgument),
  /** The internal RPC without the internal API key (SPEC §2). */
  internalUnauthenticated: () =>
    new OAuthError("access_denied", "Unauthorized", 401, Code.Unauthenticated),
} as const;
