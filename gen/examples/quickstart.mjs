#!/usr/bin/env node
// A whole MFA login with @token-service/client, against a running token-service:
//   1. IssueMfaToken (Connect): the first-factor service, after the password,
//      asks for an mfa_token with the service's internal key;
//   2. Associate (Connect): the user enrolls an authenticator;
//   3. VerifyMfaOtp (gRPC): the user's 6-digit code buys the tokens;
//   4. the same call again (gRPC): refused, with the typed OAuthError detail;
//   5. ResetUserMfa (Connect): an administrator's "lost phone" reset removes
//      the user's authenticator and recovery code and ends their sessions.
//
//   node quickstart.mjs --key <INTERNAL_API_KEY> [--url http://localhost:8080]
//                       [--client-id demo-app] [--client-secret demo-secret-change-me]
//   node quickstart.mjs --help
//
// Each flag can come from the environment instead: INTERNAL_API_KEY,
// TOKEN_SERVICE_URL, CLIENT_ID, CLIENT_SECRET. The defaults fit `npm start`
// (its demo client); it prints the internal key at start-up. Each run logs in
// a new user (enrollment happens once per user).
import { createHmac, randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { MfaService, MfaTokenService, OAuthErrorSchema, TokenService } from "@token-service/client";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/**
 * The code an authenticator app shows: TOTP (RFC 6238: HMAC-SHA1, 30 s steps,
 * 6 digits) of the base32 secret Associate returned. Written with node:crypto
 * (a dozen lines) so that the example needs nothing beyond the client package
 * and its peers.
 */
function totp(base32Secret, nowMs = Date.now()) {
  const bits = [...base32Secret.replace(/=+$/, "")]
    .map((char) => BASE32.indexOf(char).toString(2).padStart(5, "0"))
    .join("");
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((byte) => Number.parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(nowMs / 1000 / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = (mac.at(-1) ?? 0) & 0x0f; // dynamic truncation, RFC 4226 §5.3
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

/** The payload of a JWT, for printing (the service signed it; a resource server verifies it). */
const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString());

const USAGE = `Usage: node quickstart.mjs --key <INTERNAL_API_KEY> [--url <url>]
                        [--client-id <id>] [--client-secret <secret>]

A whole MFA login against a running token-service, with @token-service/client:
IssueMfaToken (Connect), Associate, VerifyMfaOtp (gRPC) with the code an
authenticator app would show, then the same call again (refused), and an
administrator's ResetUserMfa of the new user.

  --key <key>              the service's INTERNAL_API_KEY (env INTERNAL_API_KEY;
                           npm start prints it)
  --url <url>              the service (env TOKEN_SERVICE_URL; default http://localhost:8080)
  --client-id <id>         (env CLIENT_ID; default demo-app, npm start's demo client)
  --client-secret <secret> (env CLIENT_SECRET; default demo-secret-change-me)
  -h, --help               this help
`;

let flags;
try {
  ({ values: flags } = parseArgs({
    options: {
      url: { type: "string" },
      key: { type: "string" },
      "client-id": { type: "string" },
      "client-secret": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  }));
} catch (error) {
  console.error(`quickstart: ${error.message.split(". ")[0]}\n\n${USAGE}`);
  process.exit(2);
}
if (flags.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const baseUrl = flags.url ?? process.env.TOKEN_SERVICE_URL ?? "http://localhost:8080";
const internalKey = flags.key ?? process.env.INTERNAL_API_KEY;
const clientId = flags["client-id"] ?? process.env.CLIENT_ID ?? "demo-app";
const clientSecret = flags["client-secret"] ?? process.env.CLIENT_SECRET ?? "demo-secret-change-me";
if (!internalKey) {
  console.error(
    "quickstart: no internal key: pass --key <INTERNAL_API_KEY> or set INTERNAL_API_KEY (npm start prints it)",
  );
  process.exit(2);
}

// One port serves every protocol: Connect over HTTP/1.1 here, gRPC over h2c below.
const connect = createConnectTransport({ baseUrl, httpVersion: "1.1" });
const grpc = createGrpcTransport({ baseUrl });
const userId = `quickstart-${randomUUID()}`;

/** One line for a failed call: its code, and the OAuthError detail every service error carries. */
function describe(error) {
  const connectError = ConnectError.from(error);
  const [detail] = connectError.findDetails(OAuthErrorSchema);
  return detail
    ? `${Code[connectError.code]}: ${detail.error} "${detail.errorDescription}"`
    : `${Code[connectError.code]}: ${connectError.rawMessage}`;
}

try {
  const issued = await createClient(MfaTokenService, connect).issueMfaToken(
    { userId, clientId, scope: "openid", userLabel: `${userId}@example.com` },
    { headers: { authorization: `Bearer ${internalKey}` } },
  );
  const needs = issued.mfaRequirements?.enroll.length ? "enroll" : "challenge";
  console.log(`1. IssueMfaToken (Connect): an mfa_token for ${issued.expiresIn} s; ${needs}: otp`);

  const enrolled = await createClient(MfaService, connect).associate({
    mfaToken: issued.mfaToken,
    authenticatorTypes: ["otp"],
  });
  console.log(`2. Associate (Connect): secret ${enrolled.secret}`);
  console.log(`   recovery code (shown once, keep it): ${enrolled.recoveryCodes[0]}`);

  const tokens = createClient(TokenService, grpc);
  const verify = { mfaToken: issued.mfaToken, otp: totp(enrolled.secret), clientId, clientSecret };
  const answer = await tokens.verifyMfaOtp(verify);
  const claims = claimsOf(answer.accessToken);
  console.log(
    `3. VerifyMfaOtp (gRPC): ${answer.tokenType} token for ${answer.expiresIn} s, ` +
      `sub ${claims.sub}, amr ${claims.amr.join(",")}, scope "${answer.scope}", id_token: ${answer.idToken !== ""}`,
  );

  // The mfa_token is single-use: the same call again is refused, and the
  // error carries the same error and error_description as the REST body.
  const replayed = await tokens.verifyMfaOtp(verify).then(
    () => undefined,
    (error) => error,
  );
  if (replayed === undefined) throw new Error("the same mfa_token was accepted twice");
  console.log(`4. the same call again (gRPC): ${describe(replayed)}`);

  // The help desk's "lost phone" path (also `token-service users reset <user_id>`).
  const reset = await createClient(MfaTokenService, connect).resetUserMfa(
    { userId },
    { headers: { authorization: `Bearer ${internalKey}` } },
  );
  console.log(
    `5. ResetUserMfa (Connect): ${reset.authenticatorsRemoved} authenticator removed, ${reset.sessionsRevoked} sessions revoked`,
  );
} catch (error) {
  // A failed call is one line; anything else (a bug) keeps its stack trace.
  if (!(error instanceof ConnectError)) throw error;
  console.error(`quickstart: ${describe(error)}`);
  console.error(`quickstart: is token-service running at ${baseUrl}, with this internal key?`);
  process.exitCode = 1;
}
