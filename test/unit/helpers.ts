// Shared helpers of the unit suites (not a test file: the runner globs *.test.ts).

import assert from "node:assert/strict";
import { after, before } from "node:test";
import { type Code, ConnectError } from "@connectrpc/connect";
import { OAuthErrorSchema } from "@token-service/client";
import { generateTotp } from "../../src/mfa/totp.js";
import {
  codeAt,
  enrolledUser,
  issueMfaToken,
  MFA_OTP_GRANT,
  nextStep,
  postTokenForm,
} from "../support/flows.js";
import {
  CLIENTS,
  startTestService,
  type TestService,
  type TestServiceOptions,
} from "../support/test-service.js";

export const RECOVERY_GRANT = "http://auth0.com/oauth/grant-type/mfa-recovery-code";

export const POST_CLIENT_CREDENTIALS = {
  client_id: CLIENTS.post.id,
  client_secret: CLIENTS.post.secret,
} as const;

/** One real service per test file: started before the first test, closed after the last. */
export function useService(options?: TestServiceOptions): () => TestService {
  let service: TestService | undefined;
  before(async () => {
    service = await startTestService(options);
  });
  after(async () => {
    await service?.close();
  });
  return () => {
    if (service === undefined) throw new Error("the service is not started");
    return service;
  };
}

export interface RestResult {
  status: number;
  headers: Headers;
  body: unknown;
}

/** SPEC §5: exact status and `{error, error_description}` body; `Cache-Control: no-store`. */
export function assertOAuthError(
  result: RestResult,
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

/** The mfa-otp grant's form parameters, as the post client. */
export function otpParams(
  mfaToken: string,
  otp: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    grant_type: MFA_OTP_GRANT,
    ...POST_CLIENT_CREDENTIALS,
    mfa_token: mfaToken,
    otp,
    ...extra,
  };
}

/** The mfa-recovery-code grant's form parameters, as the post client. */
export function recoveryParams(mfaToken: string, recoveryCode: string): Record<string, string> {
  return {
    grant_type: RECOVERY_GRANT,
    ...POST_CLIENT_CREDENTIALS,
    mfa_token: mfaToken,
    recovery_code: recoveryCode,
  };
}

export function verifyOtp(service: TestService, mfaToken: string, otp: string) {
  return postTokenForm(service, otpParams(mfaToken, otp));
}

/** `times` wrong codes, each answered with row 9 (each takes one attempt from the bucket). */
export async function failTimes(
  service: TestService,
  mfaToken: string,
  secret: string,
  times: number,
): Promise<void> {
  for (let i = 0; i < times; i++) {
    const result = await verifyOtp(service, mfaToken, wrongCode(service, secret));
    assertOAuthError(result, 400, "invalid_grant", "Invalid otp_code.");
  }
}

/** Row 6. */
export function assertExpired(result: RestResult): void {
  assertOAuthError(result, 400, "expired_token", "mfa_token is expired");
}

/** A successful verify with the current code; then the clock moves to a fresh step. */
export async function verifyNow(service: TestService, mfaToken: string, secret: string) {
  const result = await verifyOtp(service, mfaToken, codeAt(service, secret));
  assert.equal(result.status, 200, JSON.stringify(result.body));
  nextStep(service);
  return result;
}

/** Row 8 with this `Retry-After`. */
export function assertLocked(result: RestResult, retryAfter: string): void {
  assertOAuthError(result, 429, "too_many_attempts", "Too many failed attempts. Try again later.");
  assert.equal(result.headers.get("retry-after"), retryAfter);
}

/** The smallest 6-digit code not in `valid`. */
function codeOutside(valid: readonly string[]): string {
  for (let n = 0; ; n++) {
    const candidate = String(n).padStart(6, "0");
    if (!valid.includes(candidate)) return candidate;
  }
}

/** A 6-digit code that is neither the current nor the previous step's code. */
export function wrongCode(service: TestService, secret: string): string {
  return codeOutside([codeAt(service, secret), codeAt(service, secret, -1)]);
}

/** Same for a raw secret and time (unit tests of matchTotp). */
export function wrongCodeFor(secret: Uint8Array, nowSeconds: number): string {
  return codeOutside([generateTotp(secret, nowSeconds), generateTotp(secret, nowSeconds - 30)]);
}

/** An enrolled user (active authenticator, fresh step) with a live mfa_token of the post client. */
export async function readyToVerify(service: TestService) {
  const { userId, secret } = await enrolledUser(service);
  return { userId, secret, mfaToken: await issueMfaToken(service, userId) };
}

/** RFC 6749 §2.3.1 `Authorization: Basic` of a client id and secret. */
export function basicAuth(clientId: string, secret: string): string {
  const encoded = `${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`;
  return `Basic ${Buffer.from(encoded, "utf8").toString("base64")}`;
}

/** Any REST call; the body is parsed JSON, or null when there is none (204). */
export async function rest(
  service: TestService,
  method: string,
  path: string,
  options: { mfaToken?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RestResult> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.mfaToken !== undefined) headers.authorization = `Bearer ${options.mfaToken}`;
  const response = await fetch(`${service.baseUrl}${path}`, {
    method,
    headers,
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === "" ? null : JSON.parse(text),
  };
}

/** POST /mfa/associate with the mfa_token as Bearer (JSON body, as Auth0 SDKs send it). */
export function associateRest(service: TestService, mfaToken: string): Promise<RestResult> {
  return rest(service, "POST", "/mfa/associate", {
    mfaToken,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ authenticator_types: ["otp"] }),
  });
}

/**
 * Makes every Store method of the running service throw `error()` (the service holds the
 * same store object) until the returned undo runs: SPEC §5 rows 12 and 13.
 */
export function breakStore(target: TestService, error: () => Error): () => void {
  const store = target.store as unknown as Record<string, unknown>;
  const saved = { ...store };
  for (const [name, value] of Object.entries(saved)) {
    if (typeof value === "function" && name !== "close") {
      store[name] = async () => {
        throw error();
      };
    }
  }
  return () => Object.assign(store, saved);
}

export interface RpcFailure {
  code: Code;
  message: string;
  detail: { error: string; errorDescription: string; retryAfterSeconds: number } | undefined;
}

/** Awaits a call that must fail; returns its Connect code, message and OAuthError detail. */
export async function rpcFailure(call: Promise<unknown>): Promise<RpcFailure> {
  try {
    await call;
  } catch (error) {
    const connectError = ConnectError.from(error);
    const [detail] = connectError.findDetails(OAuthErrorSchema);
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
    };
  }
  return assert.fail("the call succeeded");
}

/** SPEC §3/§5: the row's Connect code, message, and OAuthError detail with the REST values. */
export async function assertRpcError(
  call: Promise<unknown>,
  code: Code,
  error: string,
  description: string,
  retryAfterSeconds = 0,
): Promise<void> {
  assert.deepEqual(await rpcFailure(call), {
    code,
    message: description,
    detail: { error, errorDescription: description, retryAfterSeconds },
  });
}
