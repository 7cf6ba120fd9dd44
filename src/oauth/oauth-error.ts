import { Code } from "@connectrpc/connect";

/**
 * Every `error` code a caller of this service can see: the RFC 6749 §5.2
 * codes, RFC 6750 §3.1's resource-server codes, RFC 9449's DPoP codes and
 * Auth0's MFA codes. Closed: an error outside this union does not compile.
 */
export type OAuthErrorCode =
  | "access_denied"
  | "unauthorized_client"
  | "invalid_request"
  | "invalid_grant"
  | "invalid_scope"
  | "expired_token"
  | "too_many_attempts"
  | "unsupported_grant_type"
  | "unsupported_challenge_type"
  | "invalid_dpop_proof"
  | "use_dpop_nonce"
  | "invalid_token"
  | "insufficient_scope"
  | "not_found"
  | "temporarily_unavailable"
  | "server_error";

/**
 * The one error type of the service. Every failure a caller may see is built
 * by a factory of `oauthErrors` below, named after the code it produces, so
 * the byte-exact Auth0 strings live in one place. Two renderers turn it into
 * a REST body (server/rest-response.ts) and a ConnectError with a typed
 * `token.v1.OAuthError` detail (rpc/to-connect-error.ts). `cause` is logged,
 * never sent.
 */
export class OAuthError extends Error {
  override readonly name = "OAuthError";
  /** Extra response headers (`DPoP-Nonce`, `WWW-Authenticate`, `Allow`); both renderers send them. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly error: OAuthErrorCode,
    /** Client-safe `error_description`, byte-exact with Auth0. */
    readonly description: string,
    /** REST status. */
    readonly status: number,
    /** Connect code for the RPC surface. */
    readonly code: Code,
    options: {
      headers?: Record<string, string>;
      /** Whole seconds for `Retry-After` (too_many_attempts and temporarily_unavailable). */
      retryAfterSeconds?: number;
      cause?: unknown;
    } = {},
  ) {
    super(`${error}: ${description}`, { cause: options.cause });
    this.headers = options.headers ?? {};
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  readonly retryAfterSeconds: number | undefined;

  /** The same error with one more response header (e.g. a Basic challenge on row 1). */
  withHeader(name: string, value: string): OAuthError {
    return new OAuthError(this.error, this.description, this.status, this.code, {
      headers: { ...this.headers, [name.toLowerCase()]: value },
      retryAfterSeconds: this.retryAfterSeconds,
      cause: this.cause,
    });
  }
}

const invalidRequest = (description: string, status = 400) =>
  new OAuthError("invalid_request", description, status, Code.InvalidArgument);
const invalidGrant = (description: string) =>
  new OAuthError("invalid_grant", description, 400, Code.FailedPrecondition);
const accessDenied = (description: string, status: 401 | 403) =>
  new OAuthError(
    "access_denied",
    description,
    status,
    status === 401 ? Code.Unauthenticated : Code.PermissionDenied,
  );

/**
 * The error table, grouped by `error` code; the comment of each entry names
 * its row in the error reference (docs/api.md, "Errors").
 */
export const oauthErrors = {
  accessDenied: {
    /** Row 1: bad or unknown client credentials or assertion. */
    clientAuthentication: () => accessDenied("Unauthorized", 401),
    /** The internal RPC without the internal API key. */
    internalApiKey: () => accessDenied("Unauthorized", 401),
    /** Row 15: Associate while the user has an active OTP authenticator. */
    alreadyEnrolled: () => accessDenied("User is already enrolled.", 403),
    /** Row 18: the recovery-code authenticator is not deletable. */
    recoveryCodeAuthenticator: () =>
      accessDenied("Recovery code authenticator cannot be deleted.", 403),
  },
  /** Row 2: the client is not registered for this grant. */
  unauthorizedClient: (grant: string) =>
    new OAuthError(
      "unauthorized_client",
      `Grant type '${grant}' not allowed for the client.`,
      403,
      Code.PermissionDenied,
    ),
  invalidRequest: {
    /** Row 3 (also `grant_type`, a missing bearer on /mfa/*). */
    missingParameter: (name: string) => invalidRequest(`Missing required parameter: ${name}`),
    /** Row 4. */
    notAString: (name: string) => invalidRequest(`${name} must be a string`),
    /** Row 7. */
    mfaTokenOtherClient: () => invalidRequest("mfa_token not issued to this client"),
    /** Row 14: malformed body (400), wrong content type (415), too large (413). */
    body: (status: 400 | 413 | 415, reason: string) => invalidRequest(reason, status),
    /** A parameter longer than its documented limit. */
    tooLong: (name: string, max: number) =>
      invalidRequest(`${name} must be at most ${max} characters`),
    /** A parameter value the service does not support (e.g. authenticator_types). */
    unsupportedValue: (reason: string) => invalidRequest(reason),
    /** IssueMfaToken with an unknown client. */
    unknownClient: () => invalidRequest("Unknown client"),
    /** Row 19: a known route with another method; `Allow` lists the methods it has. */
    methodNotAllowed: (allow: readonly string[]) =>
      new OAuthError("invalid_request", "Method not allowed", 405, Code.Unimplemented, {
        headers: { allow: allow.join(", ") },
      }),
  },
  invalidGrant: {
    /** Row 5. */
    malformedMfaToken: () => invalidGrant("Malformed mfa_token"),
    /** Row 9. */
    invalidOtp: () => invalidGrant("Invalid otp_code."),
    /** Row 16. */
    invalidRecoveryCode: () => invalidGrant("Invalid recovery_code."),
    /** Row 21. */
    invalidRefreshToken: () => invalidGrant("Unknown or invalid refresh token."),
  },
  /** Row 22: a refresh asked for more than the login granted. */
  invalidScope: () =>
    new OAuthError(
      "invalid_scope",
      "The requested scope exceeds the scope granted.",
      400,
      Code.InvalidArgument,
    ),
  /** Row 6: the mfa_token expired or was used. */
  expiredToken: () =>
    new OAuthError("expired_token", "mfa_token is expired", 400, Code.FailedPrecondition),
  /** Row 8: the user's failure bucket is empty. */
  tooManyAttempts: (retryAfterSeconds: number) =>
    new OAuthError(
      "too_many_attempts",
      "Too many failed attempts. Try again later.",
      429,
      Code.ResourceExhausted,
      { retryAfterSeconds },
    ),
  /** Row 10. */
  unsupportedGrantType: (grant: string) =>
    new OAuthError(
      "unsupported_grant_type",
      `Unsupported grant type: ${grant}`,
      400,
      Code.InvalidArgument,
    ),
  /** Row 20: none of the requested challenge types is one the user has. */
  unsupportedChallengeType: () =>
    new OAuthError(
      "unsupported_challenge_type",
      "User is not enrolled with any of the requested challenge types.",
      400,
      Code.FailedPrecondition,
    ),
  /** Row 11: a short reason that names the rule, never the proof's content. */
  invalidDpopProof: (reason: string) =>
    new OAuthError("invalid_dpop_proof", reason, 400, Code.InvalidArgument),
  /** RFC 9449 §8: the challenge that carries a fresh nonce in `DPoP-Nonce`. */
  useDpopNonce: (nonce: string) =>
    new OAuthError(
      "use_dpop_nonce",
      "Authorization server requires nonce in DPoP proof",
      400,
      Code.InvalidArgument,
      { headers: { "dpop-nonce": nonce } },
    ),
  /**
   * RFC 9449 §9: a protected resource (the MFA API) asks for a nonce as a
   * resource server does — 401 with a `DPoP` challenge naming the error and
   * the nonce in `DPoP-Nonce` — so clients retry as they do for any resource
   * (openid-client's fetchProtectedResource retries only on this form).
   */
  useDpopNonceAtResource: (nonce: string) =>
    new OAuthError(
      "use_dpop_nonce",
      "Resource server requires nonce in DPoP proof",
      401,
      Code.Unauthenticated,
      {
        headers: {
          "dpop-nonce": nonce,
          "www-authenticate":
            'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"',
        },
      },
    ),
  /**
   * Row 23: a protected resource (the MFA API) got no usable access token.
   * RFC 6750 §3: 401 with a challenge naming the error; a client that used
   * the DPoP scheme is challenged in that scheme (RFC 9449 §7.1).
   */
  invalidToken: (scheme: "Bearer" | "DPoP" = "Bearer") =>
    new OAuthError("invalid_token", "Invalid access token", 401, Code.Unauthenticated, {
      headers: { "www-authenticate": `${scheme} error="invalid_token"` },
    }),
  /** Row 24: a valid access token without the scope the call needs (RFC 6750 §3.1). */
  insufficientScope: (scope: string, scheme: "Bearer" | "DPoP" = "Bearer") =>
    new OAuthError("insufficient_scope", "Insufficient scope", 403, Code.PermissionDenied, {
      headers: { "www-authenticate": `${scheme} error="insufficient_scope", scope="${scope}"` },
    }),
  notFound: {
    /** Row 17: unknown authenticator id, or another user's. */
    authenticator: () => new OAuthError("not_found", "Authenticator not found", 404, Code.NotFound),
    /** Row 19: no route at this path. */
    route: () => new OAuthError("not_found", "Not found", 404, Code.NotFound),
  },
  /** Row 12; every 503 carries `Retry-After` (SPEC §6). */
  temporarilyUnavailable: (cause?: unknown) =>
    new OAuthError(
      "temporarily_unavailable",
      "Service temporarily unavailable",
      503,
      Code.Unavailable,
      { cause, retryAfterSeconds: 1 },
    ),
  /** Row 13: nothing about the cause is sent. */
  serverError: (cause?: unknown) =>
    new OAuthError("server_error", "Internal error", 500, Code.Internal, { cause }),
} as const;
