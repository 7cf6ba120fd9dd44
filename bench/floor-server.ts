/**
 * The floor: the least a server can do to answer the mfa-otp grant on this
 * machine, measured with the same load tool, connections and duration as the
 * service. Per request it does only the intrinsic work:
 *   form parse → client-secret check (SHA-256 + constant-time compare) →
 *   TOTP check (current and previous step) → ONE Redis EVALSHA that checks and
 *   records the step → ONE ES256 JWT signature (node:crypto.sign on a KeyObject)
 *   → JSON response.
 * Three more floors, for the rows that sign or frame differently (issue 23):
 *   POST /openid  the same, plus an RS256 ID token (the `openid` row);
 *   POST /dpop    the same, plus DPoP proof verification first (RFC 9449 §4.3:
 *                 typ, alg, embedded jwk imported once per header like the
 *                 service's cache, ES256 signature, htm, htu, iat window, jti
 *                 recorded in the same EVALSHA, jkt thumbprint into `cnf`);
 *   H2_PORT       a bare node:http2 server (h2c, prior knowledge) for the gRPC
 *                 row: 5-byte gRPC frame, protobuf decode, the same work,
 *                 protobuf encode, grpc-status 0 in the trailers.
 * Everything else the service does (sealed mfa_token and secret decryption,
 * failure bucket, second round trip, one-port sniffing, Connect routing,
 * metrics) is what the ratio to the floor measures. The floor keeps the TOTP
 * secrets in memory and takes `mfa_token` to be the user id.
 *
 * Env: PORT, H2_PORT, REDIS_URL, SIGNING_KEYS_FILE, USERS (how many bench users), ISSUER_URL.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type JsonWebKey,
  type KeyObject,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
} from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { VerifyMfaOtpRequestSchema, VerifyMfaOtpResponseSchema } from "@token-service/client";
import { Redis } from "ioredis";
import { CLIENT_ID, CLIENT_SECRET, hotp6, MFA_OTP_GRANT, userIdOf, userSecret } from "./common.js";

const port = Number(process.env.PORT);
const issuer = process.env.ISSUER_URL ?? `http://127.0.0.1:${port}/`;
const keys = (
  JSON.parse(readFileSync(String(process.env.SIGNING_KEYS_FILE), "utf8")) as {
    keys: (Record<string, unknown> & { kid: string; alg: string })[];
  }
).keys;
const jwk = keys.find((key) => key.alg === "ES256");
const rsaJwk = keys.find((key) => key.alg === "RS256");
if (jwk === undefined || rsaJwk === undefined)
  throw new Error("SIGNING_KEYS_FILE needs an ES256 and an RS256 key");
const privateKey = createPrivateKey({ key: jwk as JsonWebKey, format: "jwk" });
const rsaKey = createPrivateKey({ key: rsaJwk as JsonWebKey, format: "jwk" });
const jwtHeader = Buffer.from(
  JSON.stringify({ alg: "ES256", typ: "at+jwt", kid: jwk.kid }),
).toString("base64url");
const idTokenHeader = Buffer.from(
  JSON.stringify({ alg: "RS256", typ: "JWT", kid: rsaJwk.kid }),
).toString("base64url");

const secrets = new Map<string, Buffer>();
for (let i = 0; i < Number(process.env.USERS); i++) secrets.set(userIdOf(i), userSecret(i));
const clientDigest = createHash("sha256").update(CLIENT_SECRET).digest();

// Its own key per user, so the floor and the service never see each other's steps.
// With DPoP the proof's jti is recorded in the same script (KEYS[2], once, with a TTL).
const RECORD_STEP_LUA = `
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
if KEYS[2] and not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1`;
const redis = new Redis(String(process.env.REDIS_URL));
const recordStepSha = (await redis.script("LOAD", RECORD_STEP_LUA)) as string;

const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" };
const DPOP_SKEW_SECONDS = 60;

type Mode = "es256" | "openid" | "dpop";

/** What a success answers, for either transport to write. */
interface Tokens {
  access_token: string;
  token_type: string;
  id_token?: string;
}

class Rejected {
  constructor(
    readonly status: number,
    readonly body: { error: string; error_description: string },
  ) {}
}
const invalidGrant = new Rejected(400, {
  error: "invalid_grant",
  error_description: "Invalid otp_code.",
});

function signJwt(header: string, claims: unknown, key: KeyObject, ecdsa: boolean): string {
  const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
  const signature = sign(
    "sha256",
    Buffer.from(input),
    ecdsa ? { key, dsaEncoding: "ieee-p1363" } : key,
  ).toString("base64url");
  return `${input}.${signature}`;
}

/** Imported proof headers by their base64url segment, as the service caches them. */
const proofKeys = new Map<string, { key: KeyObject; jkt: string }>();

function proofKey(segment: string): { key: KeyObject; jkt: string } | undefined {
  const cached = proofKeys.get(segment);
  if (cached !== undefined) return cached;
  const header = JSON.parse(Buffer.from(segment, "base64url").toString()) as {
    typ?: string;
    alg?: string;
    jwk?: { kty: string; crv: string; x: string; y: string };
  };
  if (header.typ !== "dpop+jwt" || header.alg !== "ES256" || header.jwk?.kty !== "EC") return;
  const { crv, kty, x, y } = header.jwk;
  const imported = {
    key: createPublicKey({ key: { crv, kty, x, y }, format: "jwk" }),
    // RFC 7638: the required members in lexicographic order.
    jkt: createHash("sha256").update(JSON.stringify({ crv, kty, x, y })).digest("base64url"),
  };
  if (proofKeys.size >= 1024) proofKeys.delete(proofKeys.keys().next().value as string);
  proofKeys.set(segment, imported);
  return imported;
}

/** RFC 9449 §4.3 checks on the proof; its jkt and the jti's single-use key. */
function checkProof(proof: string | undefined, nowSeconds: number): { jkt: string; jti: string } {
  const invalid = new Rejected(400, {
    error: "invalid_dpop_proof",
    error_description: "Invalid DPoP proof.",
  });
  const [headerSegment = "", payloadSegment = "", signature = ""] = (proof ?? "").split(".");
  const imported = proofKey(headerSegment);
  if (imported === undefined) throw invalid;
  const ok = verify(
    "sha256",
    Buffer.from(`${headerSegment}.${payloadSegment}`),
    { key: imported.key, dsaEncoding: "ieee-p1363" },
    Buffer.from(signature, "base64url"),
  );
  if (!ok) throw invalid;
  const claims = JSON.parse(Buffer.from(payloadSegment, "base64url").toString()) as {
    htm?: string;
    htu?: string;
    iat?: number;
    jti?: string;
  };
  if (
    claims.htm !== "POST" ||
    claims.htu !== `${issuer}oauth/token` ||
    typeof claims.iat !== "number" ||
    Math.abs(claims.iat - nowSeconds) > DPOP_SKEW_SECONDS ||
    typeof claims.jti !== "string" ||
    claims.jti === ""
  ) {
    throw invalid;
  }
  return { jkt: imported.jkt, jti: claims.jti };
}

/** The intrinsic work of one success: client, TOTP, one EVALSHA, the signatures. */
async function verifyOtp(
  params: {
    grant_type?: string;
    client_id?: string;
    client_secret?: string;
    mfa_token?: string;
    otp?: string;
  },
  mode: Mode,
  dpopProof?: string,
): Promise<Tokens> {
  const presented = createHash("sha256")
    .update(params.client_secret ?? "")
    .digest();
  if (
    params.grant_type !== MFA_OTP_GRANT ||
    params.client_id !== CLIENT_ID ||
    !timingSafeEqual(presented, clientDigest)
  ) {
    throw new Rejected(401, { error: "access_denied", error_description: "Unauthorized" });
  }
  const nowSeconds = Math.floor(Date.now() / 1000);
  const dpop = mode === "dpop" ? checkProof(dpopProof, nowSeconds) : undefined;
  const userId = params.mfa_token ?? "";
  const secret = secrets.get(userId);
  const code = params.otp ?? "";
  if (secret === undefined || code.length !== 6) throw invalidGrant;
  const current = Math.floor(nowSeconds / 30);
  // Both steps always computed and compared in constant time, as the service does.
  const given = Buffer.from(code, "latin1");
  const matchesCurrent = timingSafeEqual(Buffer.from(hotp6(secret, current), "latin1"), given);
  const matchesPrevious = timingSafeEqual(Buffer.from(hotp6(secret, current - 1), "latin1"), given);
  const step = matchesCurrent ? current : matchesPrevious ? current - 1 : -1;
  if (step < 0) throw invalidGrant;
  const stepKey = `floor:{u:${userId}}:step`;
  const recorded =
    dpop === undefined
      ? await redis.evalsha(recordStepSha, 1, stepKey, step)
      : await redis.evalsha(
          recordStepSha,
          2,
          stepKey,
          `floor:{u:${userId}}:dpop:${dpop.jkt}.${dpop.jti}`,
          step,
          (2 * DPOP_SKEW_SECONDS + 1) * 1000,
        );
  if (recorded !== 1) throw invalidGrant;

  const accessToken = signJwt(
    jwtHeader,
    {
      iss: issuer,
      sub: userId,
      aud: CLIENT_ID,
      client_id: CLIENT_ID,
      iat: nowSeconds,
      exp: nowSeconds + 86_400,
      jti: randomBytes(16).toString("base64url"),
      scope: mode === "openid" ? "openid profile" : "profile",
      amr: ["mfa", "otp"],
      ...(dpop ? { cnf: { jkt: dpop.jkt } } : {}),
    },
    privateKey,
    true,
  );
  const tokens: Tokens = { access_token: accessToken, token_type: dpop ? "DPoP" : "Bearer" };
  if (mode === "openid") {
    tokens.id_token = signJwt(
      idTokenHeader,
      {
        iss: issuer,
        sub: userId,
        aud: CLIENT_ID,
        iat: nowSeconds,
        exp: nowSeconds + 3_600,
        auth_time: nowSeconds,
        amr: ["mfa", "otp"],
        at_hash: createHash("sha256")
          .update(accessToken)
          .digest()
          .subarray(0, 16)
          .toString("base64url"),
      },
      rsaKey,
      false,
    );
  }
  return tokens;
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(payload.length),
    ...NO_STORE,
  });
  res.end(payload);
}

const MODES: Record<string, Mode> = {
  "/oauth/token": "es256",
  "/openid": "openid",
  "/dpop": "dpop",
};

async function handle(
  req: http.IncomingMessage,
  body: string,
  res: http.ServerResponse,
): Promise<void> {
  const mode = MODES[req.url ?? ""] ?? "es256";
  const params = Object.fromEntries(new URLSearchParams(body));
  const proof = req.headers.dpop;
  try {
    const tokens = await verifyOtp(params, mode, typeof proof === "string" ? proof : undefined);
    reply(res, 200, {
      ...tokens,
      scope: mode === "openid" ? "openid profile" : "profile",
      expires_in: 86_400,
    });
  } catch (error) {
    if (!(error instanceof Rejected)) throw error;
    reply(res, error.status, error.body);
  }
}

const server = http.createServer((req, res) => {
  if (req.method === "GET") return reply(res, 200, { status: "ready" }); // readiness probe
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    handle(req, Buffer.concat(chunks).toString("utf8"), res).catch(() =>
      reply(res, 500, { error: "server_error", error_description: "Internal error" }),
    );
  });
});
server.keepAliveTimeout = 5_000;
server.listen(port, "127.0.0.1");

/** gRPC over h2c with the least framing: one length-prefixed message each way. */
function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

async function handleGrpc(stream: http2.ServerHttp2Stream, body: Buffer): Promise<void> {
  const trailers = (status: number, message?: string) =>
    message === undefined
      ? { "grpc-status": String(status) }
      : { "grpc-status": String(status), "grpc-message": encodeURIComponent(message) };
  if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
    stream.respond(
      { ":status": 200, "content-type": "application/grpc", ...trailers(13, "bad frame") },
      { endStream: true },
    );
    return;
  }
  const request = fromBinary(VerifyMfaOtpRequestSchema, body.subarray(5));
  try {
    const tokens = await verifyOtp(
      {
        grant_type: MFA_OTP_GRANT,
        client_id: request.clientId,
        client_secret: request.clientSecret,
        mfa_token: request.mfaToken,
        otp: request.otp,
      },
      "es256",
    );
    const message = toBinary(
      VerifyMfaOtpResponseSchema,
      create(VerifyMfaOtpResponseSchema, {
        accessToken: tokens.access_token,
        tokenType: tokens.token_type,
        expiresIn: 86_400,
        scope: "profile",
      }),
    );
    stream.respond(
      { ":status": 200, "content-type": "application/grpc" },
      { waitForTrailers: true },
    );
    stream.once("wantTrailers", () => stream.sendTrailers(trailers(0)));
    stream.end(grpcFrame(message));
  } catch (error) {
    if (!(error instanceof Rejected)) throw error;
    // UNAUTHENTICATED for the client, INVALID_ARGUMENT otherwise (trailers-only).
    const status = error.status === 401 ? 16 : 3;
    stream.respond(
      {
        ":status": 200,
        "content-type": "application/grpc",
        ...trailers(status, error.body.error_description),
      },
      { endStream: true },
    );
  }
}

const h2 = http2.createServer();
h2.on("stream", (stream, headers) => {
  stream.on("error", () => {});
  if (headers[":method"] === "GET") {
    stream.respond({ ":status": 200 }, { endStream: true });
    return;
  }
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  stream.on("end", () => {
    handleGrpc(stream, Buffer.concat(chunks)).catch(() => {
      if (!stream.headersSent) {
        stream.respond(
          { ":status": 200, "content-type": "application/grpc", "grpc-status": "13" },
          { endStream: true },
        );
      }
    });
  });
});
if (process.env.H2_PORT) h2.listen(Number(process.env.H2_PORT), "127.0.0.1");

process.on("SIGTERM", () => {
  server.close();
  server.closeAllConnections();
  h2.close();
  redis.disconnect();
});
