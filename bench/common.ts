/**
 * Constants and small helpers shared by the benchmark driver (run.ts), the
 * seeder and the floor server (floor-server.ts runs in its own process, so
 * everything both sides must agree on lives here).
 */
import { createHmac } from "node:crypto";
import { type Agent, request as httpRequest } from "node:http";

export const MFA_OTP_GRANT = "http://auth0.com/oauth/grant-type/mfa-otp";
export const REFRESH_TOKEN_GRANT = "refresh_token";
export const CLIENT_ID = "bench-client";
export const CLIENT_SECRET = "bench-client-secret-0123456789abcdef";
/** Fixed so the seeder (this process) and the service seal/open with the same key. */
export const SECRETS_KEY_B64 = Buffer.alloc(32, 0x42).toString("base64");
export const INTERNAL_API_KEY = "bench-internal-api-key-0123456789";
/**
 * No "openid" in the scope: the service then signs exactly one JWT per
 * success (no id_token), the same single ES256 signature the floor makes.
 */
export const SCOPE = "profile";
export const AUDIENCE = "https://api.bench.example";

const USER_PREFIX = "bench-user-";
const SECRET_SEED = Buffer.from("token-service bench: deterministic TOTP secrets");

export const userIdOf = (index: number): string => `${USER_PREFIX}${index}`;

/**
 * The TOTP secret of user `index`, derived rather than stored so the floor
 * server can rebuild the same secrets at start-up without a shared file.
 */
export function userSecret(index: number): Buffer {
  return createHmac("sha256", SECRET_SEED).update(userIdOf(index)).digest().subarray(0, 20);
}

export const timeStepNow = (): number => Math.floor(Date.now() / 30_000);

/**
 * RFC 4226 §5.3 HOTP, 6 digits, on node:crypto. The driver computes tens of
 * thousands of codes before each run, so otplib (several times slower) is
 * only used once, to cross-check this function (run.ts).
 */
export function hotp6(secret: Uint8Array, counter: number): string {
  const message = Buffer.alloc(8);
  message.writeUInt32BE(Math.floor(counter / 2 ** 32), 0);
  message.writeUInt32BE(counter >>> 0, 4);
  const mac = createHmac("sha1", secret).update(message).digest();
  const offset = (mac[19] as number) & 0x0f;
  return ((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).toString().padStart(6, "0");
}

/** A 6-digit code that is neither the current nor the previous step's code. */
export function wrongCode(secret: Uint8Array, step: number): string {
  const taken = new Set([hotp6(secret, step), hotp6(secret, step - 1), hotp6(secret, step + 1)]);
  let n = 0;
  while (taken.has(String(n).padStart(6, "0"))) n++;
  return String(n).padStart(6, "0");
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] as number;
}

/** The middle value; with an even count, the mean of the two middle ones (not biased low). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return sorted.length % 2 === 1
    ? (sorted[Math.floor(middle)] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** POST /oauth/token over a keep-alive connection; resolves with the status. */
export function postToken(
  port: number,
  agent: Agent,
  body: string,
  dpop?: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: "127.0.0.1",
        port,
        path: "/oauth/token",
        method: "POST",
        agent,
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "content-length": Buffer.byteLength(body),
          ...(dpop ? { dpop } : {}),
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}
