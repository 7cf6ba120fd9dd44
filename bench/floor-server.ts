/**
 * The floor: the least a server can do to answer the mfa-otp grant on this
 * machine, measured with the same load tool, connections and duration as the
 * service. Per request it does only the intrinsic work:
 *   form parse → client-secret check (SHA-256 + constant-time compare) →
 *   TOTP check (current and previous step) → ONE Redis EVALSHA that checks and
 *   records the step → ONE ES256 JWT signature (node:crypto.sign on a KeyObject)
 *   → JSON response.
 * Everything else the service does (sealed mfa_token and secret decryption,
 * failure bucket, second round trip, one-port sniffing, Connect routing,
 * metrics) is what the ratio to the floor measures. The floor keeps the TOTP
 * secrets in memory and takes `mfa_token` to be the user id.
 *
 * Env: PORT, REDIS_URL, SIGNING_KEYS_FILE, USERS (how many bench users), ISSUER_URL.
 */
import { createHash, createPrivateKey, randomBytes, sign, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import { Redis } from "ioredis";
import { CLIENT_ID, CLIENT_SECRET, hotp6, MFA_OTP_GRANT, userIdOf, userSecret } from "./common.js";

const port = Number(process.env.PORT);
const issuer = process.env.ISSUER_URL ?? `http://127.0.0.1:${port}/`;
const jwk = (
  JSON.parse(readFileSync(String(process.env.SIGNING_KEYS_FILE), "utf8")) as {
    keys: (Record<string, unknown> & { kid: string })[];
  }
).keys[0];
if (jwk === undefined) throw new Error("SIGNING_KEYS_FILE has no key");
const privateKey = createPrivateKey({
  key: jwk as import("node:crypto").JsonWebKey,
  format: "jwk",
});
const jwtHeader = Buffer.from(
  JSON.stringify({ alg: "ES256", typ: "at+jwt", kid: jwk.kid }),
).toString("base64url");

const secrets = new Map<string, Buffer>();
for (let i = 0; i < Number(process.env.USERS); i++) secrets.set(userIdOf(i), userSecret(i));
const clientDigest = createHash("sha256").update(CLIENT_SECRET).digest();

// Its own key per user, so the floor and the service never see each other's steps.
const RECORD_STEP_LUA = `
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1`;
const redis = new Redis(String(process.env.REDIS_URL));
const recordStepSha = (await redis.script("LOAD", RECORD_STEP_LUA)) as string;

const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" };

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(payload.length),
    ...NO_STORE,
  });
  res.end(payload);
}

const invalidGrant = { error: "invalid_grant", error_description: "Invalid otp_code." };

async function handle(body: string, res: http.ServerResponse): Promise<void> {
  const params = Object.fromEntries(new URLSearchParams(body));
  const presented = createHash("sha256")
    .update(params.client_secret ?? "")
    .digest();
  if (
    params.grant_type !== MFA_OTP_GRANT ||
    params.client_id !== CLIENT_ID ||
    !timingSafeEqual(presented, clientDigest)
  ) {
    return reply(res, 401, { error: "access_denied", error_description: "Unauthorized" });
  }
  const userId = params.mfa_token ?? "";
  const secret = secrets.get(userId);
  const code = params.otp ?? "";
  if (secret === undefined || code.length !== 6) return reply(res, 400, invalidGrant);
  const nowSeconds = Math.floor(Date.now() / 1000);
  const current = Math.floor(nowSeconds / 30);
  // Both steps always computed and compared in constant time, as the service does.
  const given = Buffer.from(code, "latin1");
  const matchesCurrent = timingSafeEqual(Buffer.from(hotp6(secret, current), "latin1"), given);
  const matchesPrevious = timingSafeEqual(Buffer.from(hotp6(secret, current - 1), "latin1"), given);
  const step = matchesCurrent ? current : matchesPrevious ? current - 1 : -1;
  if (step < 0) return reply(res, 400, invalidGrant);
  const recorded = await redis.evalsha(recordStepSha, 1, `floor:{u:${userId}}:step`, step);
  if (recorded !== 1) return reply(res, 400, invalidGrant);

  const payload = Buffer.from(
    JSON.stringify({
      iss: issuer,
      sub: userId,
      aud: CLIENT_ID,
      client_id: CLIENT_ID,
      iat: nowSeconds,
      exp: nowSeconds + 86_400,
      jti: randomBytes(16).toString("base64url"),
      scope: "profile",
      amr: ["mfa", "otp"],
    }),
  ).toString("base64url");
  const input = `${jwtHeader}.${payload}`;
  const signature = sign("sha256", Buffer.from(input), {
    key: privateKey,
    dsaEncoding: "ieee-p1363",
  }).toString("base64url");
  reply(res, 200, {
    access_token: `${input}.${signature}`,
    scope: "profile",
    expires_in: 86_400,
    token_type: "Bearer",
  });
}

const server = http.createServer((req, res) => {
  if (req.method === "GET") return reply(res, 200, { status: "ready" }); // readiness probe
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    handle(Buffer.concat(chunks).toString("utf8"), res).catch(() =>
      reply(res, 500, { error: "server_error", error_description: "Internal error" }),
    );
  });
});
server.keepAliveTimeout = 5_000;
server.listen(port, "127.0.0.1");
process.on("SIGTERM", () => {
  server.close();
  server.closeAllConnections();
  redis.disconnect();
});
