/**
 * Flows against the service as a child process (service-process.ts), which
 * runs on the real clock: the fixture clients and keys in its environment,
 * mfa_tokens from the internal RPC, enrollment over REST, codes for now.
 */
import { decodeBase32Secret, generateTotp } from "../../src/mfa/totp.js";
import {
  CLIENTS,
  FIXTURE_CLIENTS_FILE,
  TEST_INTERNAL_API_KEY,
  TEST_SECRETS_KEY,
} from "./test-service.js";

/** The environment of a child service with the fixture clients (memory store). */
export function fixtureEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    CLIENTS_FILE: FIXTURE_CLIENTS_FILE,
    INTERNAL_API_KEY: TEST_INTERNAL_API_KEY,
    SECRETS_KEY: TEST_SECRETS_KEY,
    // An ephemeral management port: the default 9464 may be taken by a parallel test.
    MANAGEMENT_PORT: "0",
    ...extra,
  };
}

let counter = 0;
export function processUserId(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

/** An mfa_token from MfaTokenService/IssueMfaToken (Connect JSON). */
export async function issueMfaTokenAt(
  baseUrl: string,
  userId: string,
  clientId: string = CLIENTS.post.id,
): Promise<string> {
  const response = await fetch(`${baseUrl}/token.v1.MfaTokenService/IssueMfaToken`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${TEST_INTERNAL_API_KEY}`,
    },
    body: JSON.stringify({ userId, clientId, scope: "openid profile" }),
  });
  const body = (await response.json()) as { mfaToken?: string };
  if (response.status !== 200 || body.mfaToken === undefined) {
    throw new Error(`IssueMfaToken failed: ${response.status} ${JSON.stringify(body)}`);
  }
  return body.mfaToken;
}

/** Associates an OTP authenticator (pending until its first success); returns its secret. */
export async function associateAt(baseUrl: string, userId: string): Promise<string> {
  const response = await fetch(`${baseUrl}/mfa/associate`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${await issueMfaTokenAt(baseUrl, userId)}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ authenticator_types: ["otp"] }),
  });
  const body = (await response.json()) as { secret?: string };
  if (response.status !== 200 || body.secret === undefined) {
    throw new Error(`associate failed: ${response.status}`);
  }
  return body.secret;
}

/** The code of the current 30 s step (the service also accepts it during the next step). */
export function codeNow(secret: string): string {
  return generateTotp(decodeBase32Secret(secret), Math.floor(Date.now() / 1000));
}

/** A six-digit code that is not the current one nor the previous one. */
export function wrongCodeNow(secret: string): string {
  const now = Math.floor(Date.now() / 1000);
  const taken = new Set([
    generateTotp(decodeBase32Secret(secret), now),
    generateTotp(decodeBase32Secret(secret), now - 30),
    generateTotp(decodeBase32Secret(secret), now + 30),
  ]);
  for (let n = 0; ; n++) {
    const code = String((123_457 + n * 7_919) % 1_000_000).padStart(6, "0");
    if (!taken.has(code)) return code;
  }
}

/** The mfa-otp grant's form for the fixture's client_secret_post client. */
export function otpForm(mfaToken: string, otp: string): string {
  return new URLSearchParams({
    grant_type: "http://auth0.com/oauth/grant-type/mfa-otp",
    client_id: CLIENTS.post.id,
    client_secret: CLIENTS.post.secret,
    mfa_token: mfaToken,
    otp,
  }).toString();
}
