// openid-client (on oauth4webapi) as a relying party would use it against
// this service: discovery, its own DPoP handle with an Ed25519 key (proofs
// signed as RFC 9864's `Ed25519`), the mfa-otp and mfa-recovery-code grants
// as generic grants, a DPoP-bound refresh, revocation, the MFA API through
// fetchProtectedResource (GET and DELETE with proofs bound to the token), and
// private_key_jwt with an Ed25519 key. With DPOP_REQUIRE_NONCE=true the
// library's own nonce retry is exercised too. Nothing here signs by hand.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { calculateJwkThumbprint, decodeProtectedHeader, exportJWK } from "jose";
import * as oauth4webapi from "oauth4webapi";
import * as client from "openid-client";
import {
  associateResponse,
  codeAt,
  issueMfaToken,
  MFA_API_SCOPE,
  MFA_OTP_GRANT,
  MFA_RECOVERY_CODE_GRANT,
  uniqueUserId,
} from "../support/flows.js";
import { freePort } from "../support/redis-server.js";
import { startTestService, type TestService } from "../support/test-service.js";

const SPA_CLIENT = "dpop-spa";
const JWT_CLIENT = "ed25519-jwt";

/** A clients file with a public DPoP client and a private_key_jwt client holding `jwk`. */
async function writeClients(jwk: Record<string, unknown>) {
  const grants = [MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT, "refresh_token"];
  const dir = await mkdtemp(join(tmpdir(), "token-service-oidc-"));
  const path = join(dir, "clients.json");
  await writeFile(
    path,
    JSON.stringify({
      clients: [
        { client_id: SPA_CLIENT, token_endpoint_auth_method: "none", grant_types: grants },
        {
          client_id: JWT_CLIENT,
          token_endpoint_auth_method: "private_key_jwt",
          grant_types: grants,
          jwks: { keys: [jwk] },
        },
      ],
    }),
  );
  return { path, remove: () => rm(dir, { recursive: true, force: true }) };
}

interface Sent {
  url: string;
  headers: Headers;
  body: string;
  /** The answer's status and `WWW-Authenticate` challenge. */
  status?: number;
  challenge?: string | null;
}

/** Every request openid-client sends, to read the DPoP proofs and assertions it made. */
function recordingFetch(sent: Sent[]) {
  return async (url: string, options: client.CustomFetchOptions) => {
    const record: Sent = {
      url,
      headers: new Headers(options.headers as HeadersInit),
      body: typeof options.body === "string" ? options.body : String(options.body ?? ""),
    };
    sent.push(record);
    const response = await fetch(url, options as RequestInit);
    record.status = response.status;
    record.challenge = response.headers.get("www-authenticate");
    return response;
  };
}

function jwtPayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
}

for (const requireNonce of [false, true]) {
  describe(`openid-client ${requireNonce ? "with DPOP_REQUIRE_NONCE=true" : "(no nonce)"}: DPoP with an Ed25519 key`, () => {
    let service: TestService;
    let issuer: URL;
    let removeClients: () => Promise<void>;
    let jwtKey: CryptoKeyPair;
    const sent: Sent[] = [];

    before(async () => {
      jwtKey = (await oauth4webapi.generateKeyPair("Ed25519")) as CryptoKeyPair;
      const file = await writeClients({ ...(await exportJWK(jwtKey.publicKey)), kid: "ed-1" });
      removeClients = file.remove;
      const port = await freePort();
      issuer = new URL(`http://127.0.0.1:${port}/`);
      service = await startTestService({
        port,
        env: {
          ISSUER_URL: issuer.href,
          CLIENTS_FILE: file.path,
          DPOP_REQUIRE_NONCE: String(requireNonce),
        },
      });
    });
    after(async () => {
      await service?.close();
      await removeClients?.();
    });

    /** openid-client's Configuration from discovery (plain http allowed: loopback). */
    async function discover(clientId: string, auth: client.ClientAuth) {
      const config = await client.discovery(issuer, clientId, undefined, auth, {
        execute: [client.allowInsecureRequests],
      });
      config[client.customFetch] = recordingFetch(sent);
      return config;
    }

    /** A new user with a pending authenticator: its secret and recovery code. */
    async function pendingUser(clientId: string) {
      const userId = uniqueUserId("oidc");
      const association = await associateResponse(
        service,
        await issueMfaToken(service, userId, { clientId }),
      );
      return {
        userId,
        secret: association.secret,
        recoveryCode: association.recoveryCodes[0] ?? "",
      };
    }

    test("discovery advertises Ed25519 beside EdDSA for DPoP and client assertions", async () => {
      const config = await discover(SPA_CLIENT, client.None());
      const metadata = config.serverMetadata();
      assert.equal(metadata.issuer, issuer.href);
      for (const list of [
        metadata.dpop_signing_alg_values_supported,
        metadata.token_endpoint_auth_signing_alg_values_supported,
      ]) {
        assert.ok(list?.includes("Ed25519"), JSON.stringify(list));
        assert.ok(list?.includes("EdDSA"), JSON.stringify(list));
      }
    });

    test("mfa-otp grant, refresh and revocation, all bound to the Ed25519 DPoP key", async () => {
      const config = await discover(SPA_CLIENT, client.None());
      const keyPair = await client.randomDPoPKeyPair("Ed25519");
      const dpop = client.getDPoPHandle(config, keyPair);
      const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
      const user = await pendingUser(SPA_CLIENT);
      const from = sent.length;

      const tokens = await client.genericGrantRequest(
        config,
        MFA_OTP_GRANT,
        {
          mfa_token: await issueMfaToken(service, user.userId, {
            clientId: SPA_CLIENT,
            scope: "openid offline_access",
          }),
          otp: codeAt(service, user.secret),
        },
        { DPoP: dpop },
      );
      assert.equal(tokens.token_type, "dpop");
      assert.deepEqual(jwtPayload(tokens.access_token).cnf, { jkt });
      assert.equal(typeof tokens.refresh_token, "string");
      assert.equal(tokens.claims()?.sub, user.userId, "openid-client validated the ID token");

      // The proofs openid-client made: RFC 9864's name, the Ed25519 key.
      const proofs = sent.slice(from).map((request) => request.headers.get("dpop"));
      assert.ok(proofs.length >= 1 && proofs.every((proof) => typeof proof === "string"));
      for (const proof of proofs) {
        const header = decodeProtectedHeader(proof as string);
        assert.equal(header.alg, "Ed25519");
        assert.equal(header.typ, "dpop+jwt");
        assert.equal((header.jwk as { crv?: string }).crv, "Ed25519");
      }
      if (requireNonce) {
        assert.equal(proofs.length, 2, "the first proof got use_dpop_nonce, the retry carried it");
        assert.equal(jwtPayload(proofs[0] as string).nonce, undefined);
        assert.equal(typeof jwtPayload(proofs[1] as string).nonce, "string");
      }

      // A public client's refresh token is bound to the key (RFC 9449 §5).
      const refreshed = await client.refreshTokenGrant(
        config,
        tokens.refresh_token as string,
        undefined,
        { DPoP: dpop },
      );
      assert.equal(refreshed.token_type, "dpop");
      assert.deepEqual(jwtPayload(refreshed.access_token).cnf, { jkt });
      // Without the key's proof the refresh token is refused (row 11).
      await assert.rejects(
        client.refreshTokenGrant(config, refreshed.refresh_token as string),
        (error: client.ResponseBodyError) => {
          assert.equal(error.error, "invalid_dpop_proof");
          return true;
        },
      );

      await client.tokenRevocation(config, refreshed.refresh_token as string);
      await assert.rejects(
        client.refreshTokenGrant(config, refreshed.refresh_token as string, undefined, {
          DPoP: dpop,
        }),
        (error: client.ResponseBodyError) => {
          assert.equal(error.error, "invalid_grant");
          assert.equal(error.error_description, "Unknown or invalid refresh token.");
          return true;
        },
      );
    });

    test("MFA API: a DPoP-bound token from the recovery grant lists and deletes via fetchProtectedResource", async () => {
      const config = await discover(SPA_CLIENT, client.None());
      const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair("Ed25519"));
      const user = await pendingUser(SPA_CLIENT);
      // Activate the authenticator first (the recovery grant needs an enrolled user).
      await client.genericGrantRequest(
        config,
        MFA_OTP_GRANT,
        {
          mfa_token: await issueMfaToken(service, user.userId, { clientId: SPA_CLIENT }),
          otp: codeAt(service, user.secret),
        },
        { DPoP: dpop },
      );
      const mfaApi = await client.genericGrantRequest(
        config,
        MFA_RECOVERY_CODE_GRANT,
        {
          mfa_token: await issueMfaToken(service, user.userId, {
            clientId: SPA_CLIENT,
            audience: new URL("mfa/", issuer).href,
            scope: MFA_API_SCOPE,
          }),
          recovery_code: user.recoveryCode,
        },
        { DPoP: dpop },
      );
      assert.equal(mfaApi.token_type, "dpop");
      assert.equal(mfaApi.refresh_token, undefined);

      const listed = await client.fetchProtectedResource(
        config,
        mfaApi.access_token,
        new URL("mfa/authenticators", issuer),
        "GET",
        undefined,
        undefined,
        { DPoP: dpop },
      );
      assert.equal(listed.status, 200);
      const authenticators = (await listed.json()) as Array<Record<string, unknown>>;
      assert.deepEqual(
        authenticators.map((a) => [a.authenticator_type, a.type, a.active]),
        [
          ["otp", "otp", true],
          ["recovery-code", "recovery-code", true],
        ],
      );
      const otpId = String(authenticators[0]?.id);
      const deleted = await client.fetchProtectedResource(
        config,
        mfaApi.access_token,
        new URL(`mfa/authenticators/${encodeURIComponent(otpId)}`, issuer),
        "DELETE",
        undefined,
        undefined,
        { DPoP: dpop },
      );
      assert.equal(deleted.status, 204);
      // Another key's proofs do not carry the bound token (RFC 9449 §7).
      const stranger = client.getDPoPHandle(config, await client.randomDPoPKeyPair("Ed25519"));
      const beforeStranger = sent.length;
      const refused = await client.fetchProtectedResource(
        config,
        mfaApi.access_token,
        new URL("mfa/authenticators", issuer),
        "GET",
        undefined,
        undefined,
        { DPoP: stranger },
      );
      assert.equal(refused.status, 400);
      assert.equal(((await refused.json()) as { error: string }).error, "invalid_dpop_proof");
      if (requireNonce) {
        // A new key has no nonce yet: the MFA API challenges as a resource server
        // (RFC 9449 §9: 401 + WWW-Authenticate: DPoP), and openid-client retried.
        const [first, second] = sent.slice(beforeStranger);
        assert.equal(first?.status, 401);
        assert.match(first?.challenge ?? "", /^DPoP error="use_dpop_nonce"/);
        assert.equal(second?.status, 400);
      }
    });

    test("private_key_jwt with an Ed25519 key (assertion signed as Ed25519), plus a DPoP proof", async () => {
      const config = await discover(JWT_CLIENT, client.PrivateKeyJwt(jwtKey.privateKey));
      const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair("Ed25519"));
      const user = await pendingUser(JWT_CLIENT);
      const from = sent.length;
      const tokens = await client.genericGrantRequest(
        config,
        MFA_OTP_GRANT,
        {
          mfa_token: await issueMfaToken(service, user.userId, { clientId: JWT_CLIENT }),
          otp: codeAt(service, user.secret),
        },
        { DPoP: dpop },
      );
      assert.equal(jwtPayload(tokens.access_token).client_id, JWT_CLIENT);
      assert.equal(tokens.token_type, "dpop");
      const assertion = new URLSearchParams(sent.at(-1)?.body).get("client_assertion");
      assert.ok(assertion, "openid-client sent a client assertion");
      assert.equal(decodeProtectedHeader(assertion).alg, "Ed25519");
      assert.ok(sent.length > from);
      // A second use of the same assertion is refused (jti once): replayed by hand.
      const replay = await fetch(new URL("oauth/token", issuer), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: sent.at(-1)?.body,
      });
      assert.equal(replay.status, 401);
    });
  });
}
