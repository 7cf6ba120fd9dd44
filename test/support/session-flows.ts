/**
 * Refresh-token sessions at the wire (REST `POST /oauth/token` with
 * `grant_type=refresh_token`, `POST /oauth/revoke`, TokenService.RefreshToken
 * and RevokeToken): the fixture clients that hold the `refresh_token` grant,
 * their credentials on both surfaces, a login that starts a session, and the
 * exchange and revocation requests.
 */
import assert from "node:assert/strict";
import {
  enrolledUser,
  freshCode,
  issueMfaToken,
  MFA_OTP_GRANT,
  postTokenForm,
  postTokenJson,
} from "./flows.js";
import type { TestService } from "./test-service.js";

export const REFRESH_TOKEN_GRANT = "refresh_token";
/** The scope of a login that asks for a session (OpenID Connect Core §11). */
export const SESSION_SCOPE = "openid profile offline_access";
/** Row 21's exact wording. */
export const INVALID_REFRESH_TOKEN = "Unknown or invalid refresh token.";
/** Row 22's exact wording. */
export const SCOPE_EXCEEDS_GRANT = "The requested scope exceeds the scope granted.";

export interface SessionClient {
  id: string;
  /** Absent for the public client. */
  secret?: string;
  /** How it authenticates (test/fixtures/clients.json). */
  method: "client_secret_post" | "client_secret_basic" | "none";
}

/** The fixture clients with the `refresh_token` grant, and one without it. */
export const SESSION_CLIENTS = {
  /** Defaults: rotating, leeway 0, 30 days absolute, 15 days idle; also the recovery grant. */
  rotating: {
    id: "rotating-client",
    secret: "rotating-client-secret-0123456789",
    method: "client_secret_post",
  },
  /** Rotating with a 30-second leeway. */
  leeway: {
    id: "leeway-client",
    secret: "leeway-client-secret-0123456789",
    method: "client_secret_post",
  },
  nonRotating: {
    id: "non-rotating-client",
    secret: "non-rotating-client-secret-0123456789",
    method: "client_secret_post",
  },
  /** 3600 s absolute, 600 s idle; client_secret_basic. */
  short: {
    id: "short-session-client",
    secret: "short-session-client-secret-0123456789",
    method: "client_secret_basic",
  },
  /** A public client (`none`): its sessions are bound to the login's DPoP key. */
  public: { id: "public-refresh-client", method: "none" },
  /** mfa-otp and mfa-recovery-code only: never a session, row 2 for the refresh grant. */
  withoutGrant: {
    id: "post-client",
    secret: "post-client-secret-0123456789",
    method: "client_secret_post",
  },
} as const satisfies Record<string, SessionClient>;

/** REST: the client's authentication as body parameters and headers. */
export function restCredentials(client: SessionClient): {
  params: Record<string, string>;
  headers: Record<string, string>;
} {
  switch (client.method) {
    case "client_secret_basic":
      return {
        params: {},
        headers: {
          authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString("base64")}`,
        },
      };
    case "client_secret_post":
      return { params: { client_id: client.id, client_secret: client.secret ?? "" }, headers: {} };
    case "none":
      return { params: { client_id: client.id }, headers: {} };
  }
}

/** RPC: the credential fields of a TokenService request, and call headers (Basic). */
export function rpcCredentials(client: SessionClient): {
  fields: { clientId: string; clientSecret: string };
  headers: Record<string, string>;
} {
  const { headers } = restCredentials(client);
  return {
    fields: {
      clientId: client.method === "client_secret_basic" ? "" : client.id,
      clientSecret: client.method === "client_secret_post" ? (client.secret ?? "") : "",
    },
    headers,
  };
}

export interface SessionUser {
  userId: string;
  secret: string;
}

/** A user with an active authenticator (enrolled through the fixture's post-client). */
export function sessionUser(service: TestService): Promise<SessionUser> {
  return enrolledUser(service);
}

export interface LoginOptions {
  scope?: string;
  /** A DPoP proof for the token endpoint. */
  dpop?: string;
}

/**
 * A login through the mfa-otp grant over REST (form) for `client`, with a
 * fresh code (the fake clock moves to the next step); asserts 200 and
 * returns the token response.
 */
export async function login(
  service: TestService,
  user: SessionUser,
  client: SessionClient = SESSION_CLIENTS.rotating,
  options: LoginOptions = {},
): Promise<Record<string, unknown>> {
  const mfaToken = await issueMfaToken(service, user.userId, {
    clientId: client.id,
    scope: options.scope ?? SESSION_SCOPE,
  });
  const { params, headers } = restCredentials(client);
  const result = await postTokenForm(
    service,
    {
      grant_type: MFA_OTP_GRANT,
      ...params,
      mfa_token: mfaToken,
      otp: freshCode(service, user.secret),
    },
    { ...headers, ...(options.dpop !== undefined ? { dpop: options.dpop } : {}) },
  );
  assert.equal(result.status, 200, JSON.stringify(result.body));
  return result.body;
}

/** A login's refresh token (asserting there is one). */
export async function loginForRefreshToken(
  service: TestService,
  user: SessionUser,
  client: SessionClient = SESSION_CLIENTS.rotating,
  options: LoginOptions = {},
): Promise<string> {
  const body = await login(service, user, client, options);
  assert.equal(typeof body.refresh_token, "string", "the login started a session");
  return body.refresh_token as string;
}

export interface RefreshOptions {
  scope?: string;
  dpop?: string;
  encoding?: "form" | "json";
}

/** `grant_type=refresh_token` over REST. */
export function postRefresh(
  service: TestService,
  client: SessionClient,
  refreshToken: string,
  options: RefreshOptions = {},
) {
  const { params, headers } = restCredentials(client);
  const body = {
    grant_type: REFRESH_TOKEN_GRANT,
    ...params,
    refresh_token: refreshToken,
    ...(options.scope !== undefined ? { scope: options.scope } : {}),
  };
  const allHeaders = { ...headers, ...(options.dpop !== undefined ? { dpop: options.dpop } : {}) };
  return options.encoding === "json"
    ? postTokenJson(service, body, allHeaders)
    : postTokenForm(service, body, allHeaders);
}

/** An exchange that must succeed (REST form); returns the token response. */
export async function refresh(
  service: TestService,
  client: SessionClient,
  refreshToken: string,
  options: RefreshOptions = {},
): Promise<Record<string, unknown>> {
  const result = await postRefresh(service, client, refreshToken, options);
  assert.equal(result.status, 200, JSON.stringify(result.body));
  return result.body;
}

/** A rotating exchange that must succeed; returns the successor. */
export async function rotate(
  service: TestService,
  client: SessionClient,
  refreshToken: string,
  options: RefreshOptions = {},
): Promise<string> {
  const body = await refresh(service, client, refreshToken, options);
  assert.equal(typeof body.refresh_token, "string", "a rotating exchange returns a successor");
  assert.notEqual(body.refresh_token, refreshToken);
  return body.refresh_token as string;
}

/** `POST /oauth/revoke` (RFC 7009) with a raw body; status, headers and the body as text. */
export async function postRevoke(
  service: TestService,
  client: SessionClient,
  params: Record<string, unknown>,
  encoding: "form" | "json" = "form",
) {
  const credentials = restCredentials(client);
  const all = { ...credentials.params, ...params };
  const response = await fetch(`${service.baseUrl}/oauth/revoke`, {
    method: "POST",
    headers: {
      "content-type":
        encoding === "form" ? "application/x-www-form-urlencoded" : "application/json",
      ...credentials.headers,
    },
    body:
      encoding === "form"
        ? new URLSearchParams(all as Record<string, string>).toString()
        : JSON.stringify(all),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Asserts RFC 7009's answer: 200, an empty body, `Cache-Control: no-store`. */
export function assertRevoked(result: { status: number; headers: Headers; text: string }): void {
  assert.deepEqual({ status: result.status, text: result.text }, { status: 200, text: "" });
  assert.equal(result.headers.get("cache-control"), "no-store");
}
