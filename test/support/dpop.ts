/**
 * DPoP proofs (RFC 9449 §4.2), private_key_jwt client assertions (RFC 7523
 * §3) and JWK thumbprints (RFC 7638) for the integration suites. Everything
 * here is built independently of the service's own code: the thumbprint is
 * computed by hand over the canonical JSON, and the raw-JWS builder can
 * produce tokens jose refuses to sign (alg "none", a forged signature).
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { enrolledUser, issueMfaToken } from "./flows.js";
import { FIXTURE_CLIENTS_FILE, type TestService } from "./test-service.js";

/** The JWS algorithms the service must accept (the issue's allow-list). */
export const ALLOWED_ALGS = ["ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256"] as const;

export const JWT_BEARER_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
export const JWT_CLIENT_ID = "jwt-client";

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

/** A key pair with its public JWK (and the private one, for the "jwk is private" case). */
export interface TestKey {
  alg: string;
  privateKey: SigningKey;
  publicJwk: JWK;
  privateJwk: JWK;
}

export async function generateTestKey(alg = "ES256", kid?: string): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const privateJwk = await exportJWK(privateKey);
  if (kid !== undefined) {
    publicJwk.kid = kid;
    privateJwk.kid = kid;
  }
  return { alg, privateKey, publicJwk, privateJwk };
}

const b64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");

/** A compact JWS from raw parts, signature included as given (for forged or unsigned tokens). */
export function rawJws(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  signature = "",
): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${signature}`;
}

/** Signs `payload` under exactly `header` (jose adds nothing: no iat, no typ). */
export function signJws(
  key: SigningKey | Uint8Array,
  header: Record<string, unknown> & { alg: string },
  payload: Record<string, unknown>,
): Promise<string> {
  return new SignJWT(payload).setProtectedHeader(header).sign(key);
}

/** Whole seconds of the service's fake clock. */
export function nowSeconds(service: TestService): number {
  return Math.floor(service.clock.nowMs() / 1000);
}

/** The token endpoint URL a REST proof's `htu` (and an assertion's `aud`) names. */
export function tokenEndpointUrl(service: TestService): string {
  return new URL("oauth/token", service.app.ctx.config.issuerUrl).href;
}

/** docs/api.md: the htu of an RPC call is ISSUER_URL joined with the RPC path. */
export function rpcHtu(service: TestService, method = "VerifyMfaOtp"): string {
  return new URL(`token.v1.TokenService/${method}`, service.app.ctx.config.issuerUrl).href;
}

/** The claims of a valid proof for POST `htu` at the fake clock, with a fresh jti. */
export function proofClaims(service: TestService, htu: string): Record<string, unknown> {
  return { htm: "POST", htu, iat: nowSeconds(service), jti: randomUUID() };
}

/** The protected header of a valid proof signed by `key`. */
export function proofHeader(key: TestKey): Record<string, unknown> & { alg: string } {
  return { alg: key.alg, typ: "dpop+jwt", jwk: key.publicJwk };
}

export interface ProofOverrides {
  /** Header members to set (a value of `undefined` removes the member). */
  header?: Record<string, unknown>;
  /** Claims to set (a value of `undefined` removes the claim). */
  claims?: Record<string, unknown>;
}

function applyOverrides(
  base: Record<string, unknown>,
  overrides: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const result = { ...base };
  for (const [name, value] of Object.entries(overrides ?? {})) {
    if (value === undefined) delete result[name];
    else result[name] = value;
  }
  return result;
}

/**
 * A DPoP proof (RFC 9449 §4.2) signed by `key` for POST `htu` at the
 * service's fake clock; `overrides` break one rule at a time.
 */
export function dpopProofFor(
  service: TestService,
  key: TestKey,
  htu: string = tokenEndpointUrl(service),
  overrides: ProofOverrides = {},
): Promise<string> {
  const header = applyOverrides(proofHeader(key), overrides.header) as { alg: string };
  return signJws(
    key.privateKey,
    header,
    applyOverrides(proofClaims(service, htu), overrides.claims),
  );
}

/**
 * RFC 7638 §3 by hand: the required members of the key type, in
 * lexicographic order, as JSON without whitespace, hashed with SHA-256 and
 * base64url-encoded.
 */
export function jwkThumbprint(jwk: JWK): string {
  const required: Record<string, string[]> = {
    EC: ["crv", "kty", "x", "y"],
    OKP: ["crv", "kty", "x"],
    RSA: ["e", "kty", "n"],
  };
  const members = required[String(jwk.kty)];
  if (members === undefined) throw new Error(`unexpected kty ${jwk.kty}`);
  const canonical = `{${members
    .map((name) => {
      const value = (jwk as Record<string, unknown>)[name];
      if (typeof value !== "string") throw new Error(`jwk lacks ${name}`);
      return `${JSON.stringify(name)}:${JSON.stringify(value)}`;
    })
    .join(",")}}`;
  return createHash("sha256").update(canonical, "utf8").digest("base64url");
}

/** The payload of a compact JWT, decoded by hand (no verification). */
export function jwtPayloadOf(token: string): Record<string, unknown> {
  const [, payload] = token.split(".");
  if (payload === undefined) throw new Error("not a compact JWS");
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
}

/** The claims of a valid client assertion for `clientId` at the fake clock. */
export function assertionClaims(
  service: TestService,
  clientId = JWT_CLIENT_ID,
  audience: unknown = tokenEndpointUrl(service),
): Record<string, unknown> {
  const now = nowSeconds(service);
  return {
    iss: clientId,
    sub: clientId,
    aud: audience,
    iat: now,
    exp: now + 60,
    jti: randomUUID(),
  };
}

/** A private_key_jwt assertion (RFC 7523 §3) signed by `key`; `overrides` break one rule. */
export function clientAssertionFor(
  service: TestService,
  key: TestKey,
  overrides: ProofOverrides = {},
): Promise<string> {
  const header = applyOverrides({ alg: key.alg, kid: key.publicJwk.kid }, overrides.header) as {
    alg: string;
  };
  return signJws(
    key.privateKey,
    header,
    applyOverrides(assertionClaims(service), overrides.claims),
  );
}

/** REST parameters that authenticate `jwt-client` with `assertion`. */
export function assertionParams(assertion: string): Record<string, string> {
  return {
    client_id: JWT_CLIENT_ID,
    client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
    client_assertion: assertion,
  };
}

/**
 * A temporary CLIENTS_FILE: the fixture clients plus `jwt-client`
 * (private_key_jwt, mfa-otp grant) registered with `publicJwks`.
 */
export async function writeClientsFileWithJwtClient(
  publicJwks: JWK[],
): Promise<{ path: string; remove(): Promise<void> }> {
  const fixture = JSON.parse(await readFile(FIXTURE_CLIENTS_FILE, "utf8")) as {
    clients: unknown[];
  };
  fixture.clients.push({
    client_id: JWT_CLIENT_ID,
    token_endpoint_auth_method: "private_key_jwt",
    grant_types: ["http://auth0.com/oauth/grant-type/mfa-otp"],
    jwks: { keys: publicJwks },
  });
  const dir = await mkdtemp(join(tmpdir(), "token-service-clients-"));
  const path = join(dir, "clients.json");
  await writeFile(path, JSON.stringify(fixture, null, 2));
  return { path, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A user ready for one verify: an active authenticator and a live mfa_token. */
export interface ReadyUser {
  userId: string;
  secret: string;
  mfaToken: string;
}

/**
 * `count` users with an active authenticator and a fresh mfa_token each
 * (issued to `clientId`). Enrolment moves the fake clock step by step, so it
 * runs first and sequentially; afterwards the current step is later than
 * every user's last accepted step, so `codeAt(service, secret)` is a right,
 * unused code for each of them until the clock moves on.
 */
export async function readyUsers(
  service: TestService,
  count: number,
  clientId?: string,
): Promise<ReadyUser[]> {
  const enrolled: Array<{ userId: string; secret: string }> = [];
  for (let i = 0; i < count; i++) enrolled.push(await enrolledUser(service));
  return Promise.all(
    enrolled.map(async (user) => ({
      ...user,
      mfaToken: await issueMfaToken(service, user.userId, clientId ? { clientId } : {}),
    })),
  );
}

/** A fresh ES256 key and a DPoP proof (RFC 9449 §4.2) for POST `htu` at the fake clock. */
export async function dpopProof(
  service: TestService,
  htu: string = tokenEndpointUrl(service),
): Promise<string> {
  return dpopProofFor(service, await generateTestKey("ES256"), htu);
}
