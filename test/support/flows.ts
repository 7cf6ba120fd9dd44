import { type Client, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { MfaService, MfaTokenService, TokenService } from "@token-service/client";
import { decodeBase32Secret, generateTotp } from "../../src/mfa/totp.js";
import { CLIENTS, TEST_INTERNAL_API_KEY, type TestService } from "./test-service.js";

export const MFA_OTP_GRANT = "http://auth0.com/oauth/grant-type/mfa-otp";

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
