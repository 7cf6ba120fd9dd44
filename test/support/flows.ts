/**
 * The test flows every suite shares: real clients of each protocol against a
 * test service, the steps of a login (issue an mfa_token, associate, verify,
 * recover, get an MFA API token), request builders for the fixture clients,
 * and codes that are certainly right or certainly wrong at the fake clock.
 * Assertions on errors are in oauth-assertions.ts, DPoP and private_key_jwt
 * helpers in dpop.ts.
 */
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import {
  type AssociateResponse,
  MfaService,
  MfaTokenService,
  TokenService,
} from "@token-service/client";
import { decodeBase32Secret, generateTotp } from "../../src/mfa/totp.js";
import { MFA_OTP_GRANT } from "../../src/oauth/grants/mfa-otp.js";
import { MFA_RECOVERY_CODE_GRANT } from "../../src/oauth/grants/mfa-recovery-code.js";
import { h2cRequest, jsonOf } from "./http-clients.js";
import type { RestResult } from "./oauth-assertions.js";
import { assertOAuthError } from "./oauth-assertions.js";
import {
  CLIENTS,
  startTestService,
  TEST_INTERNAL_API_KEY,
  type TestService,
  type TestServiceOptions,
} from "./test-service.js";

/** The grant URIs, as the service defines them. */
export { MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT };

export type Protocol = "connect-h1" | "connect-h1-binary" | "connect-h2" | "grpc" | "grpc-web";

/** A real client transport of each kind, against the service's one port. */
export function transportFor(baseUrl: string, protocol: Protocol): Transport {
  switch (protocol) {
    case "connect-h1":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false });
    case "connect-h1-binary":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true });
    case "connect-h2":
      return createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false });
    case "grpc":
      return createGrpcTransport({ baseUrl });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
  }
}

export interface Clients {
  token: Client<typeof TokenService>;
  mfa: Client<typeof MfaService>;
  mfaToken: Client<typeof MfaTokenService>;
}

export function clientsFor(service: TestService, protocol: Protocol = "connect-h1"): Clients {
  const transport = transportFor(service.baseUrl, protocol);
  return {
    token: createClient(TokenService, transport),
    mfa: createClient(MfaService, transport),
    mfaToken: createClient(MfaTokenService, transport),
  };
}

export const internalAuth = { headers: { authorization: `Bearer ${TEST_INTERNAL_API_KEY}` } };

let userCounter = 0;
/** A user id no other test uses (tests may share one Redis). */
export function uniqueUserId(prefix = "user"): string {
  userCounter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${userCounter}`;
}

export async function issueMfaToken(
  service: TestService,
  userId: string,
  overrides: { clientId?: string; scope?: string; audience?: string; userLabel?: string } = {},
): Promise<string> {
  const response = await clientsFor(service).mfaToken.issueMfaToken(
    {
      userId,
      clientId: overrides.clientId ?? CLIENTS.post.id,
      audience: overrides.audience ?? "https://api.example.test",
      scope: overrides.scope ?? "openid profile",
      userLabel: overrides.userLabel ?? `${userId}@example.test`,
    },
    internalAuth,
  );
  return response.mfaToken;
}

/** Associates an OTP authenticator (pending) and returns its base32 secret. */
export async function associate(service: TestService, mfaToken: string): Promise<string> {
  const response = await clientsFor(service).mfa.associate({
    mfaToken,
    authenticatorTypes: ["otp"],
  });
  return response.secret;
}

/** The code for the service's (fake) clock now, or `offsetSteps` steps away. */
export function codeAt(service: TestService, secret: string, offsetSteps = 0): string {
  return generateTotp(
    decodeBase32Secret(secret),
    Math.floor(service.clock.nowMs() / 1000) + offsetSteps * 30,
  );
}

/** Moves the fake clock to the start of the next 30 s step (a fresh code, no replay). */
export function nextStep(service: TestService): void {
  const now = service.clock.nowMs();
  service.clock.set((Math.floor(now / 30_000) + 1) * 30_000 + 1_000);
}

/** POST /oauth/token form-encoded with fetch; returns status, headers and parsed JSON. */
export async function postTokenForm(
  service: TestService,
  params: Record<string, string>,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${service.baseUrl}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(params).toString(),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

export async function postTokenJson(
  service: TestService,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${service.baseUrl}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

/**
 * A user with an ACTIVE authenticator: issue, associate, verify once.
 * Returns the secret; the clock is moved to a fresh step afterwards.
 */
export async function enrolledUser(
  service: TestService,
  userId = uniqueUserId(),
): Promise<{ userId: string; secret: string }> {
  const secret = await associate(service, await issueMfaToken(service, userId));
  const mfaToken = await issueMfaToken(service, userId);
  const result = await postTokenForm(service, {
    grant_type: MFA_OTP_GRANT,
    client_id: CLIENTS.post.id,
    client_secret: CLIENTS.post.secret,
    mfa_token: mfaToken,
    otp: codeAt(service, secret),
  });
  if (result.status !== 200)
    throw new Error(`enrolment verify failed: ${JSON.stringify(result.body)}`);
  nextStep(service);
  return { userId, secret };
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

export function verifyOtp(service: TestService, mfaToken: string, otp: string) {
  return postTokenForm(service, otpGrantParams(mfaToken, otp));
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

/** A successful verify with the current code; then the clock moves to a fresh step. */
export async function verifyNow(service: TestService, mfaToken: string, secret: string) {
  const result = await verifyOtp(service, mfaToken, codeAt(service, secret));
  assert.equal(result.status, 200, JSON.stringify(result.body));
  nextStep(service);
  return result;
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
): Promise<RestResult<unknown>> {
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
export function associateRest(
  service: TestService,
  mfaToken: string,
): Promise<RestResult<unknown>> {
  return rest(service, "POST", "/mfa/associate", {
    mfaToken,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ authenticator_types: ["otp"] }),
  });
}

/**
 * Makes every Store method of the running service throw `error()` (the service holds the
 * same store object) until the returned undo runs: error rows 12 and 13.
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

/** A 6-digit code that is neither the current nor the previous step's code. */
export function wrongCode(service: TestService, secret: string): string {
  return codeOutside([codeAt(service, secret), codeAt(service, secret, -1)]);
}

/** Same for a raw secret and time (unit tests of matchTotp). */
export function wrongCodeFor(secret: Uint8Array, nowSeconds: number): string {
  return codeOutside([generateTotp(secret, nowSeconds), generateTotp(secret, nowSeconds - 30)]);
}

/** The smallest 6-digit code not in `valid`. */
function codeOutside(valid: readonly string[]): string {
  for (let n = 0; ; n++) {
    const candidate = String(n).padStart(6, "0");
    if (!valid.includes(candidate)) return candidate;
  }
}

/** REST form parameters of an mfa-otp grant for the client_secret_post fixture client. */
export function otpGrantParams(
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

/** REST form parameters of an mfa-recovery-code grant for the client_secret_post fixture client. */
export function recoveryGrantParams(
  mfaToken: string,
  recoveryCode: string,
): Record<string, string> {
  return {
    grant_type: MFA_RECOVERY_CODE_GRANT,
    ...POST_CLIENT_CREDENTIALS,
    mfa_token: mfaToken,
    recovery_code: recoveryCode,
  };
}
