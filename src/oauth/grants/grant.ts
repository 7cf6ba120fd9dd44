import type { ThrottledAddress } from "../address-throttle.js";
import type { RegisteredClient } from "../client-registry.js";
import type { ValidDpopProof } from "../dpop.js";

/** The token-endpoint parameters a grant may read besides client authentication. */
export type TokenParameterName = "mfa_token" | "otp" | "recovery_code" | "refresh_token" | "scope";

/** What the token endpoint hands a grant once the checks every grant shares have passed. */
export interface GrantInput<P extends TokenParameterName> {
  /** The authenticated client, registered for this grant (rows 1 and 2 passed). */
  client: RegisteredClient;
  /** The grant's required parameters, present and strings (rows 3 and 4 passed). */
  params: Readonly<Record<P, string>>;
  /** Its optional parameters, when sent (strings). */
  optional: Readonly<Partial<Record<TokenParameterName, string>>>;
  /** A valid DPoP proof (row 11 passed), not yet recorded as used. */
  dpop?: ValidDpopProof;
  /** The client address's failure bucket, when per-address throttling is on (code grants charge it). */
  address?: ThrottledAddress;
  nowMs: number;
}

/** A login's identity as its tokens carry it. */
export interface TokenSubject {
  userId: string;
  clientId: string;
  audience: string;
  scope: string;
  /** RFC 8176 authentication method references. */
  amr: readonly string[];
  /** When the user authenticated (Unix seconds), when that was not this request (a refresh). */
  authTimeSeconds?: number;
}

/** What a successful grant hands to token issuance. */
export interface GrantOutcome {
  subject: TokenSubject;
  /** RFC 9449 §6.1: the key the new tokens are bound to. */
  dpopJkt?: string;
  /** The recovery-code grant's replacement code, shown once. */
  recoveryCode?: string;
  /** A refresh token: a login's first (a session started) or a rotated successor. */
  refreshToken?: string;
}

/**
 * One grant type of the token endpoint (RFC 6749 §4.5 extension grants and
 * Auth0's MFA grants). The token endpoint runs the checks every grant
 * shares, in order — client (row 1), grant allowed (row 2), `required`
 * parameters (rows 3, 4), DPoP proof (row 11) — then `redeem`s.
 */
export interface Grant<P extends TokenParameterName = TokenParameterName> {
  /** The `grant_type` value. */
  uri: string;
  /** Parameters it needs, in the order rows 3 and 4 check them. */
  required: readonly P[];
  /** Parameters it reads when present. */
  optional?: readonly TokenParameterName[];
  redeem(input: GrantInput<P>): Promise<GrantOutcome>;
}
