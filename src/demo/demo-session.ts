import { randomBytes } from "node:crypto";
import { createSecretBox } from "../mfa/secret-box.js";
import { oauthErrors } from "../oauth/oauth-error.js";
import type { Clock } from "../util/clock.js";

/** How long a demo session may ask for new mfa_tokens of its user (seconds). */
export const DEMO_SESSION_TTL_SECONDS = 3600;

const CONTEXT = "demo-session";
/** The users the demo invents: `demo-` and 128 random bits, so no real user id is ever reached. */
const DEMO_USER_ID = /^demo-[A-Za-z0-9_-]{22}$/;

export interface DemoSessions {
  /** A fresh demo user and the sealed handle the page keeps to come back as that user. */
  start(): { userId: string; session: string };
  /** The user of a handle this service sealed and that has not expired; else row 14's invalid_request. */
  userOf(session: unknown): string;
}

/**
 * The page's handle on its demo user. The user id alone is no credential
 * (security events log it); the handle is the id and an expiry sealed with
 * AES-256-GCM under a key derived from SECRETS_KEY for this purpose only
 * (mfa/secret-box.ts), so only the browser that started the demo can ask for
 * more mfa_tokens of that user, and only for an hour. Nothing is stored.
 */
export function createDemoSessions(secretsKey: Buffer, clock: Clock): DemoSessions {
  const box = createSecretBox(secretsKey, CONTEXT);
  const seal = (userId: string) => {
    const expiresAt = Math.floor(clock.nowMs() / 1000) + DEMO_SESSION_TTL_SECONDS;
    return box.seal(Buffer.from(JSON.stringify({ u: userId, e: expiresAt }), "utf8"), CONTEXT);
  };
  return {
    start() {
      const userId = `demo-${randomBytes(16).toString("base64url")}`;
      return { userId, session: seal(userId) };
    },
    userOf(session) {
      if (session === undefined || session === null) {
        throw oauthErrors.invalidRequest.missingParameter("session");
      }
      if (typeof session !== "string") throw oauthErrors.invalidRequest.notAString("session");
      const opened = session.length <= 512 ? box.open(session, CONTEXT) : null;
      const claims = opened === null ? undefined : parseClaims(opened);
      if (claims === undefined || claims.e <= Math.floor(clock.nowMs() / 1000)) {
        throw oauthErrors.invalidRequest.unsupportedValue(
          "Unknown or expired demo session: start a new demo login",
        );
      }
      return claims.u;
    },
  };
}

function parseClaims(plaintext: Buffer): { u: string; e: number } | undefined {
  try {
    const value = JSON.parse(plaintext.toString("utf8")) as { u?: unknown; e?: unknown };
    if (typeof value.u !== "string" || !DEMO_USER_ID.test(value.u)) return undefined;
    if (typeof value.e !== "number") return undefined;
    return { u: value.u, e: value.e };
  } catch {
    return undefined;
  }
}
