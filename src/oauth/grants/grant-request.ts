import type { MfaTokenClaims } from "../../mfa/mfa-token-codec.js";
import type { ServiceContext } from "../../service-context.js";
import type { MfaTokenRef } from "../../store/store.js";
import type { ClientCredentials } from "../client-auth.js";
import type { RegisteredClient } from "../client-registry.js";
import type { ValidDpopProof } from "../dpop.js";
import { oauthErrors } from "../oauth-error.js";

/**
 * A token request as both surfaces hand it over: the parameters exactly as
 * parsed (JSON values may be of any type; form and RPC values are strings,
 * with "" meaning absent on RPC), plus the headers that carry credentials.
 */
export interface GrantRequest {
  params: Readonly<Record<string, unknown>>;
  /** `Authorization` header (client_secret_basic). */
  authorization?: string | undefined;
  /** `DPoP` header value(s) (RFC 9449 §4.1). */
  dpopHeader?: string | string[] | undefined;
  /** The URL a DPoP proof's `htu` must name for this request (RFC 9449 §4.3 check 9). */
  dpopHtu: string;
}

/** The checks every code grant runs first, in SPEC §5 order (rows 1, 2, 3/4, 11, 5, 6, 7). */
export interface VerifiedGrantRequest {
  client: RegisteredClient;
  token: MfaTokenClaims;
  tokenRef: MfaTokenRef;
  /** The code-like parameter (otp or recovery_code), known to be a string. */
  code: string;
  /** A valid DPoP proof, if one was sent: its key thumbprint and single-use mark. */
  dpop?: ValidDpopProof;
}

export function credentialsOf(request: GrantRequest): ClientCredentials {
  const { client_id, client_secret, client_assertion, client_assertion_type } = request.params;
  return {
    clientId: present(client_id),
    clientSecret: present(client_secret),
    clientAssertion: present(client_assertion),
    clientAssertionType: present(client_assertion_type),
    authorization: request.authorization,
  };
}

/** JSON `null` and "" count as missing (SPEC §5). */
function present(value: unknown): unknown {
  return value === null || value === "" ? undefined : value;
}

/** Rows 3 and 4 for one parameter. */
export function requireString(params: GrantRequest["params"], name: string): string {
  const value = present(params[name]);
  if (value === undefined) throw oauthErrors.missingParameter(name);
  if (typeof value !== "string") throw oauthErrors.notAString(name);
  return value;
}

export async function verifyGrantRequest(
  ctx: ServiceContext,
  request: GrantRequest,
  grantType: string,
  codeParameter: "otp" | "recovery_code",
  nowMs: number,
): Promise<VerifiedGrantRequest> {
  const client = await ctx.clientAuth.authenticate(credentialsOf(request));
  if (!client.grantTypes.includes(grantType)) throw oauthErrors.grantNotAllowed(grantType);
  const rawToken = requireString(request.params, "mfa_token");
  const code = requireString(request.params, codeParameter);
  // Row 11 comes before anything single-use is looked at: a bad proof consumes nothing.
  const dpop = await ctx.dpop.verify(
    request.dpopHeader,
    { htm: "POST", htu: request.dpopHtu },
    nowMs,
  );
  const token = decodeLiveMfaToken(ctx, rawToken, nowMs);
  if (token.clientId !== client.clientId) throw oauthErrors.mfaTokenOtherClient();
  return { client, token, tokenRef: mfaTokenRefOf(token), code, ...(dpop ? { dpop } : {}) };
}

/** Rows 5 and 6 (by time; "already used" is decided by the store). */
export function decodeLiveMfaToken(
  ctx: ServiceContext,
  raw: string,
  nowMs: number,
): MfaTokenClaims {
  const token = ctx.mfaTokens.decode(raw);
  if (token === null) throw oauthErrors.malformedMfaToken();
  if (token.expiresAt * 1000 <= nowMs) throw oauthErrors.expiredMfaToken();
  return token;
}

export function mfaTokenRefOf(token: MfaTokenClaims): MfaTokenRef {
  return { userId: token.userId, tokenId: token.tokenId, expiresAtMs: token.expiresAt * 1000 };
}
