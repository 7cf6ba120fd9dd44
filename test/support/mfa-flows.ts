/**
 * Higher-level helpers shared by the integration suites: request bodies for
 * the fixture client, typed RPC error extraction, codes that are certainly
 * right or certainly wrong at the fake clock, and DPoP proofs.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { type Code, ConnectError } from "@connectrpc/connect";
import { type AssociateResponse, OAuthErrorSchema } from "@token-service/client";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import {
  clientsFor,
  codeAt,
  issueMfaToken,
  MFA_OTP_GRANT,
  nextStep,
  type Protocol,
  postTokenForm,
} from "./flows.js";
import { h2cRequest, jsonOf } from "./http-clients.js";
import { CLIENTS, type TestService } from "./test-service.js";

export const MFA_RECOVERY_CODE_GRANT = "http://auth0.com/oauth/grant-type/mfa-recovery-code";

/** REST form parameters of an mfa-otp grant for the client_secret_post fixture client. */
export function otpGrantParams(mfaToken: string, otp: string): Record<string, string> {
  return {
    grant_type: MFA_OTP_GRANT,
    client_id: CLIENTS.post.id,
    client_secret: CLIENTS.post.secret,
    mfa_token: mfaToken,
    otp,
  };
}

/** REST form parameters of an mfa-recovery-code grant for the client_secret_post fixture client. */
export function recoveryGrantParams(
  mfaToken: string,
  recoveryCode: string,
): Record<string, string> {
  return {
    grant_type: MFA_RECOVERY_CODE_GRANT,
    client_id: CLIENTS.post.id,
    client_secret: CLIENTS.post.secret,
    mfa_token: mfaToken,
    recovery_code: recoveryCode,
  };
}

/** The VerifyMfaOtp request of the same grant on the RPC surface. */
export function otpRpcRequest(mfaToken: string, otp: string) {
  return {
    mfaToken,
    otp,
    clientId: CLIENTS.post.id,
    clientSecret: CLIENTS.post.secret,
  };
}

/** What an RPC failure carries: its Connect code and the typed token.v1.OAuthError detail. */
export interface RpcFailure {
  code: Code;
  detail: { error: string; errorDescription: string; retryAfterSeconds: number } | undefined;
  /** Response headers and trailers of the failed call. */
  metadata: Headers;
}

/** What a rejected RPC's error carries. */
export function rpcFailureOf(error: unknown): RpcFailure {
  const connectError = ConnectError.from(error);
  const details = connectError.findDetails(OAuthErrorSchema);
  assert.ok(details.length <= 1, "at most one OAuthError detail");
  const [detail] = details;
  return {
    code: connectError.code,
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
  assert.fail("the call succeeded, an error was expected");
}

/**
 * Asserts that a call fails with `code` and exactly this OAuthError detail
 * (retryAfterSeconds 0 unless given); returns the error's metadata.
 */
export async function assertRpcError(
  call: Promise<unknown>,
  code: Code,
  error: string,
  errorDescription: string,
  retryAfterSeconds = 0,
): Promise<Headers> {
  const failure = await rpcFailure(call);
  assert.deepEqual(
    { code: failure.code, detail: failure.detail },
    { code, detail: { error, errorDescription, retryAfterSeconds } },
  );
  return failure.metadata;
}

/** A REST response as postTokenForm/postTokenJson (flows.ts) and postTokenH2c return it. */
export interface RestResult {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** Asserts a REST OAuth error: status, exact `{error, error_description}` body, `no-store`. */
export function assertRestError(
  result: RestResult,
  status: number,
  error: string,
  errorDescription: string,
): void {
  assert.deepEqual(
    { status: result.status, body: result.body },
    { status, body: { error, error_description: errorDescription } },
  );
  assert.equal(result.headers.get("cache-control"), "no-store");
}

/** POST /oauth/token over h2c (prior knowledge), form-encoded or JSON. */
export async function postTokenH2c(
  service: TestService,
  params: Record<string, string>,
  encoding: "form" | "json",
  headers: Record<string, string> = {},
): Promise<RestResult> {
  const raw = await h2cRequest(service.baseUrl, {
    method: "POST",
    path: "/oauth/token",
    headers: {
      "content-type":
        encoding === "form" ? "application/x-www-form-urlencoded" : "application/json",
      ...headers,
    },
    body: encoding === "form" ? new URLSearchParams(params).toString() : JSON.stringify(params),
  });
  assert.equal(raw.httpVersion, "2.0");
  return {
    status: raw.status,
    headers: new Headers(raw.headers),
    body: jsonOf(raw) as Record<string, unknown>,
  };
}

/** A six-digit code that matches neither the current nor the previous step at the fake clock. */
export function wrongCode(service: TestService, secret: string): string {
  const valid = new Set([codeAt(service, secret), codeAt(service, secret, -1)]);
  for (let n = 0; ; n += 111_111) {
    const candidate = String(n % 1_000_000).padStart(6, "0");
    if (!valid.has(candidate)) return candidate;
  }
}

/**
 * Moves the clock to the start of a step whose code differs from the previous
 * step's (so exactly one step can accept it) and returns that code.
 */
export function freshCode(service: TestService, secret: string): string {
  for (;;) {
    nextStep(service);
    const code = codeAt(service, secret);
    if (code !== codeAt(service, secret, -1)) return code;
  }
}

/** Associate with the full response (secret and, the first time, recovery codes). */
export function associateResponse(
  service: TestService,
  mfaToken: string,
  protocol: Protocol = "connect-h1",
): Promise<AssociateResponse> {
  return clientsFor(service, protocol).mfa.associate({ mfaToken, authenticatorTypes: ["otp"] });
}

/** `count` mfa_tokens of one user (sealed tokens: issuing writes nothing to the store). */
export function issueMfaTokens(
  service: TestService,
  userId: string,
  count: number,
): Promise<string[]> {
  return Promise.all(Array.from({ length: count }, () => issueMfaToken(service, userId)));
}

/** The token endpoint URL a DPoP proof's `htu` must name on REST. */
export function tokenEndpointOf(service: TestService): string {
  return new URL("oauth/token", service.app.ctx.config.issuerUrl).href;
}

/** A fresh ES256 key and a DPoP proof (RFC 9449 §4.2) for POST `htu` at the fake clock. */
export async function dpopProof(
  service: TestService,
  htu: string = tokenEndpointOf(service),
): Promise<string> {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const jwk = await exportJWK(publicKey);
  return new SignJWT({
    htm: "POST",
    htu,
    iat: Math.floor(service.clock.nowMs() / 1000),
    jti: randomUUID(),
  })
    .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk })
    .sign(privateKey);
}

/** The scopes of an MFA API access token that may list and delete authenticators. */
export const MFA_API_SCOPE = "read:authenticators remove:authenticators";

/** The MFA API's audience: `<issuer>mfa/`. */
export function mfaApiAudience(service: TestService): string {
  return new URL("mfa/", service.app.ctx.config.issuerUrl).href;
}

/**
 * An MFA API access token for a user whose active (or pending) authenticator
 * has `secret`: an mfa_token for the MFA API's audience, then the mfa-otp
 * grant with a fresh code (the clock moves to the next step).
 */
export async function mfaApiToken(
  service: TestService,
  userId: string,
  secret: string,
  options: { scope?: string; headers?: Record<string, string> } = {},
): Promise<string> {
  const mfaToken = await issueMfaToken(service, userId, {
    audience: mfaApiAudience(service),
    scope: options.scope ?? MFA_API_SCOPE,
  });
  const result = await postTokenForm(
    service,
    otpGrantParams(mfaToken, freshCode(service, secret)),
    options.headers,
  );
  if (result.status !== 200) {
    throw new Error(`MFA API token grant failed: ${JSON.stringify(result.body)}`);
  }
  return String(result.body.access_token);
}
