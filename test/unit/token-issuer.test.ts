// The token issuer (src/tokens/token-issuer.ts): an MFA API access token
// (audience `<issuer>mfa/`) lives the smaller of MFA_API_TOKEN_TTL_SECONDS
// and ACCESS_TOKEN_TTL_SECONDS (SPEC §4); every access token carries
// `auth_time`, the login's on a refresh.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeJwt } from "jose";
import { generateEphemeralSigningKeys } from "../../src/tokens/signing-keys.js";
import { createTokenIssuer } from "../../src/tokens/token-issuer.js";

const ISSUER = "https://auth.example.test/";
const MFA_API = `${ISSUER}mfa/`;
const keys = generateEphemeralSigningKeys();

function issuer(accessTokenTtlSeconds: number) {
  return createTokenIssuer({
    issuerUrl: ISSUER,
    keys: () => keys,
    accessTokenTtlSeconds,
    mfaApi: { audience: MFA_API, ttlSeconds: 300 },
  });
}

const grant = (audience: string, authTimeSeconds?: number) => ({
  userId: "user-1",
  clientId: "client-1",
  audience,
  scope: "remove:authenticators",
  amr: ["mfa", "otp"],
  idTokenAlg: "RS256" as const,
  nowSeconds: 1_800_000_000,
  ...(authTimeSeconds !== undefined ? { authTimeSeconds } : {}),
});

describe("access token lifetime and auth_time", () => {
  test("an MFA API token lives MFA_API_TOKEN_TTL_SECONDS while that is the smaller", () => {
    const issued = issuer(86_400).issue(grant(MFA_API));
    assert.equal(issued.expiresIn, 300);
    const claims = decodeJwt(issued.accessToken);
    assert.deepEqual([claims.exp, claims.auth_time], [1_800_000_300, 1_800_000_000]);
  });

  test("an MFA API token lives ACCESS_TOKEN_TTL_SECONDS when that is the smaller", () => {
    const issued = issuer(120).issue(grant(MFA_API));
    assert.equal(issued.expiresIn, 120);
    assert.equal(decodeJwt(issued.accessToken).exp, 1_800_000_120);
  });

  test("any other audience lives ACCESS_TOKEN_TTL_SECONDS; a refresh keeps the login's auth_time", () => {
    const issued = issuer(86_400).issue(grant("https://api.example.test", 1_799_990_000));
    assert.equal(issued.expiresIn, 86_400);
    const claims = decodeJwt(issued.accessToken);
    assert.deepEqual([claims.exp, claims.auth_time], [1_800_086_400, 1_799_990_000]);
  });
});
