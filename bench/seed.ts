/**
 * Provisioning and request bodies.
 *
 * Every success consumes an mfa_token and the user's current time step (the
 * replay guard accepts only a strictly greater step), so a run at full speed
 * needs one fresh user per success. Users are written straight to Redis in
 * the store's own format (src/store/redis-keys.ts, redis-store.ts) with
 * pipelining; mfa_tokens are sealed with the service's codec and need no
 * storage at all.
 *
 * The refresh row needs no users: its sessions are started straight in the
 * store (Redis or PostgreSQL) as the service starts them (SessionPool), and
 * each connection then exchanges the token of its previous answer
 * (http-load.ts `chain`). The PostgreSQL rows' users are the same users,
 * seeded in both stores (UserPool.seedPostgres).
 *
 * Time steps: bodies are built right before a run with the code of the step
 * current at that moment (S). The service accepts the current and the
 * previous step, so those codes stay valid until step S+2 begins — at least
 * 30 s later, longer than any run. A user is handed out again only in a later
 * step, so its next code is for a greater step.
 */
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { VerifyMfaOtpRequestSchema } from "@token-service/client";
import type { Redis } from "ioredis";
import type pg from "pg";
import { sealTotpSecret } from "../src/mfa/authenticator-secret.js";
import { createMfaTokenCodec } from "../src/mfa/mfa-token-codec.js";
import { createSecretBox } from "../src/mfa/secret-box.js";
import { DEFAULT_REFRESH_TOKEN_SETTINGS } from "../src/oauth/sessions/refresh-token-settings.js";
import { createSessionDeps } from "../src/oauth/sessions/session-deps.js";
import { startSession } from "../src/oauth/sessions/start-session.js";
import { userKeys } from "../src/store/redis-keys.js";
import type { SessionStore } from "../src/store/session-store.js";
import {
  AUDIENCE,
  CLIENT_ID,
  CLIENT_SECRET,
  hotp6,
  MFA_OTP_GRANT,
  REFRESH_TOKEN_GRANT,
  SCOPE,
  SECRETS_KEY_B64,
  timeStepNow,
  userIdOf,
  userSecret,
  wrongCode,
} from "./common.js";

/** One request as the load tools send it. */
export interface BenchRequest {
  body: Buffer;
  headers?: Record<string, string>;
}

export type BodyKind =
  | "form"
  | "json"
  | "connect"
  | "grpc"
  | "dpop"
  | "wrong"
  /** Alternately a "form" success and a "wrong" code. */
  | "mixed"
  /** A refresh-token exchange (SessionPool), chained per connection. */
  | "refresh"
  /** A REST form success whose scope holds "openid": an RS256 ID token is signed too. */
  | "openid"
  /** MfaTokenService.IssueMfaToken over Connect JSON (the call on every login). */
  | "issue"
  /** The floors' bodies: the user id as mfa_token (floor-server.ts), form, DPoP or gRPC. */
  | "floor"
  | "floor-dpop"
  | "floor-grpc";

/**
 * Hands out prepared requests in order. When a run outlasts them it asks
 * `refill` for a small batch more (counted: the next run is sized larger),
 * and wraps around only when that fails (counted: those answer with errors).
 */
export class Feed {
  private index = 0;
  refills = 0;
  wrapped = 0;
  constructor(
    private items: readonly BenchRequest[],
    private readonly refill?: () => BenchRequest[] | undefined,
  ) {
    if (items.length === 0) throw new Error("empty feed");
  }
  next(): BenchRequest {
    if (this.index === this.items.length) {
      const more = this.refill?.();
      if (more !== undefined && more.length > 0) {
        this.items = more;
        this.refills++;
      } else {
        this.wrapped++;
      }
      this.index = 0;
    }
    return this.items[this.index++] as BenchRequest;
  }
}

const SEED_BATCH = 5_000;
/** The bench's mfa_tokens outlive any run; short, so consumed markers leave Redis soon. */
const MFA_TOKEN_LIFETIME_S = 300;

export class UserPool {
  private readonly secrets: Buffer[] = [];
  private cursor = 0;
  private takenStep = -1;
  private takenInStep = 0;
  private readonly codec = createMfaTokenCodec(Buffer.from(SECRETS_KEY_B64, "base64"));
  private readonly dpopKey = newDpopKey();

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) this.secrets.push(userSecret(i));
  }

  /**
   * The same users in PostgreSQL: one active authenticator row each
   * (migrations/0001-store.sql), inserted in batches from arrays (`unnest`).
   */
  async seedPostgres(db: pg.Pool): Promise<void> {
    const box = createSecretBox(Buffer.from(SECRETS_KEY_B64, "base64"), "totp-secret");
    for (let start = 0; start < this.size; start += SEED_BATCH) {
      const users: string[] = [];
      const ids: string[] = [];
      const secrets: string[] = [];
      for (let i = start; i < Math.min(this.size, start + SEED_BATCH); i++) {
        const userId = userIdOf(i);
        users.push(userId);
        ids.push(`bench${i}`);
        secrets.push(sealTotpSecret(box, userId, `bench${i}`, this.secrets[i] as Buffer));
      }
      await db.query(
        `INSERT INTO authenticators (user_id, id, secret, active, last_step)
         SELECT u, i, s, true, -1 FROM unnest($1::text[], $2::text[], $3::text[]) AS t(u, i, s)`,
        [users, ids, secrets],
      );
    }
  }

  /** One active authenticator per user (hash at userKeys(id).otp), pipelined. */
  async seed(redis: Redis): Promise<void> {
    const box = createSecretBox(Buffer.from(SECRETS_KEY_B64, "base64"), "totp-secret");
    for (let start = 0; start < this.size; start += SEED_BATCH) {
      const pipeline = redis.pipeline();
      for (let i = start; i < Math.min(this.size, start + SEED_BATCH); i++) {
        const userId = userIdOf(i);
        const authenticatorId = `bench${i}`;
        pipeline.hset(userKeys(userId).otp, {
          id: authenticatorId,
          secret: sealTotpSecret(box, userId, authenticatorId, this.secrets[i] as Buffer),
          active: "1",
          last_step: "-1",
        });
      }
      await pipeline.exec();
    }
  }

  /** Users not yet handed out in the current step. */
  available(step = timeStepNow()): number {
    return step === this.takenStep ? this.size - this.takenInStep : this.size;
  }

  /**
   * `count` requests of one kind, each with its own user, mfa_token and the
   * current step's code. Call only when `available()` ≥ count (success kinds).
   */
  build(kind: Exclude<BodyKind, "refresh">, count: number, port: number): BenchRequest[] {
    const step = timeStepNow();
    if (kind === "wrong") return this.buildWrong(count, step);
    if (kind === "issue") return this.buildIssue(count);
    if (kind === "mixed") {
      const right = this.build("form", Math.ceil(count / 2), port);
      const wrong = this.buildWrong(right.length, step);
      return right.flatMap((request, i) => [request, wrong[i % wrong.length] as BenchRequest]);
    }
    if (step !== this.takenStep) {
      this.takenStep = step;
      this.takenInStep = 0;
    }
    if (this.available(step) < count) throw new Error(`only ${this.available(step)} users left`);
    this.takenInStep += count;
    const requests: BenchRequest[] = [];
    for (let n = 0; n < count; n++) {
      const i = this.cursor;
      this.cursor = (this.cursor + 1) % this.size;
      const code = hotp6(this.secrets[i] as Buffer, step);
      requests.push(this.request(kind, i, code, port));
    }
    return requests;
  }

  /**
   * Wrong codes change neither the user's step nor the mfa_token (a failure
   * only takes an attempt from the bucket), so the attack path reuses a
   * fixed set of users, independent of the success users' steps.
   */
  private buildWrong(count: number, step: number): BenchRequest[] {
    const requests: BenchRequest[] = [];
    for (let i = 0; i < Math.min(count, this.size); i++) {
      requests.push(this.request("wrong", i, wrongCode(this.secrets[i] as Buffer, step), 0));
    }
    return requests;
  }

  /** IssueMfaToken changes nothing in the store: a fixed set of users may cycle. */
  private buildIssue(count: number): BenchRequest[] {
    const requests: BenchRequest[] = [];
    for (let i = 0; i < Math.min(count, this.size); i++) {
      requests.push({
        body: Buffer.from(
          JSON.stringify({
            userId: userIdOf(i),
            clientId: CLIENT_ID,
            audience: AUDIENCE,
            scope: SCOPE,
          }),
        ),
      });
    }
    return requests;
  }

  private mfaToken(userIndex: number, scope = SCOPE): string {
    return this.codec.issue({
      userId: userIdOf(userIndex),
      clientId: CLIENT_ID,
      audience: AUDIENCE,
      scope,
      userLabel: "",
      expiresAt: Math.floor(Date.now() / 1000) + MFA_TOKEN_LIFETIME_S,
    }).token;
  }

  private request(
    kind: Exclude<BodyKind, "refresh">,
    i: number,
    otp: string,
    port: number,
  ): BenchRequest {
    // The floor takes the user id as its "mfa_token" (see floor-server.ts).
    const mfaToken =
      kind === "floor" || kind === "floor-dpop" || kind === "floor-grpc"
        ? userIdOf(i)
        : this.mfaToken(i, kind === "openid" ? `openid ${SCOPE}` : SCOPE);
    switch (kind) {
      case "form":
      case "openid":
      case "wrong":
      case "mixed":
      case "floor":
        return { body: Buffer.from(form(mfaToken, otp)) };
      case "dpop":
      case "floor-dpop":
        return {
          body: Buffer.from(form(mfaToken, otp)),
          headers: { dpop: this.dpopKey.proof(`http://127.0.0.1:${port}/oauth/token`) },
        };
      case "json":
        return {
          body: Buffer.from(
            JSON.stringify({
              grant_type: MFA_OTP_GRANT,
              client_id: CLIENT_ID,
              client_secret: CLIENT_SECRET,
              mfa_token: mfaToken,
              otp,
            }),
          ),
        };
      case "connect":
        return {
          body: Buffer.from(
            JSON.stringify({ mfaToken, otp, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }),
          ),
        };
      case "grpc":
      case "floor-grpc":
        return { body: grpcFrame(mfaToken, otp) };
      case "issue":
        throw new Error("IssueMfaToken bodies come from buildIssue");
    }
  }
}

function form(mfaToken: string, otp: string): string {
  return new URLSearchParams({
    grant_type: MFA_OTP_GRANT,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    mfa_token: mfaToken,
    otp,
  }).toString();
}

/** gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, protobuf. */
function grpcFrame(mfaToken: string, otp: string): Buffer {
  const message = toBinary(
    VerifyMfaOtpRequestSchema,
    create(VerifyMfaOtpRequestSchema, {
      mfaToken,
      otp,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
    }),
  );
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/**
 * One client DPoP key; proofs are signed before the run (the client's cost,
 * not the server's), each with its own jti (RFC 9449 §11.1).
 */
function newDpopKey() {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const { kty, crv, x, y } = publicKey.export({ format: "jwk" });
  const header = Buffer.from(
    JSON.stringify({ typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } }),
  ).toString("base64url");
  return {
    proof(htu: string): string {
      const payload = Buffer.from(
        JSON.stringify({
          htm: "POST",
          htu,
          jti: randomBytes(16).toString("base64url"),
          iat: Math.floor(Date.now() / 1000),
        }),
      ).toString("base64url");
      const input = `${header}.${payload}`;
      const signature = sign("sha256", Buffer.from(input), {
        key: privateKey,
        dsaEncoding: "ieee-p1363",
      });
      return `${input}.${signature.toString("base64url")}`;
    },
  };
}

/** The refresh row's login: no "openid", so one ES256 signature per exchange, as the verify rows. */
const SESSION_SCOPE = `${SCOPE} offline_access`;

/**
 * Sessions of the bench client, started in a store with the service's own code
 * (src/oauth/sessions/start-session.ts, the same SECRETS_KEY, Auth0's default
 * settings: rotating, leeway 0). Each hands out one refresh token, once: a
 * chain head. A rotating token must not be exchanged twice (that is a reuse
 * and revokes its session), so tokens are never handed out again.
 */
export class SessionPool {
  private readonly tokens: string[] = [];
  private cursor = 0;

  /** Starts `count` sessions in `store` (Redis or PostgreSQL), one user each, in concurrent batches. */
  async seed(store: SessionStore, count: number): Promise<void> {
    const deps = createSessionDeps(Buffer.from(SECRETS_KEY_B64, "base64"), store);
    const client = {
      clientId: CLIENT_ID,
      authMethod: "client_secret_post" as const,
      grantTypes: [REFRESH_TOKEN_GRANT],
      refreshToken: { ...DEFAULT_REFRESH_TOKEN_SETTINGS },
    };
    for (let start = 0; start < count; start += SEED_BATCH) {
      const batch = Array.from({ length: Math.min(SEED_BATCH, count - start) }, (_, n) =>
        startSession(deps, {
          client,
          userId: `bench-session-${start + n}`,
          audience: AUDIENCE,
          scope: SESSION_SCOPE,
          amr: ["mfa", "otp"],
          nowMs: Date.now(),
        }),
      );
      for (const token of await Promise.all(batch)) {
        if (token === undefined) throw new Error("the bench client gets no refresh token");
        this.tokens.push(token);
      }
    }
  }

  available(): number {
    return this.tokens.length - this.cursor;
  }

  /** `count` chain heads: refresh requests with tokens never handed out before. */
  build(count: number): BenchRequest[] {
    if (this.available() < count) throw new Error(`only ${this.available()} sessions left`);
    const heads = this.tokens.slice(this.cursor, this.cursor + count);
    this.cursor += count;
    return heads.map(refreshRequest);
  }
}

/** `grant_type=refresh_token` as a form, for the client_secret_post bench client. */
export function refreshRequest(refreshToken: string): BenchRequest {
  return {
    body: Buffer.from(
      new URLSearchParams({
        grant_type: REFRESH_TOKEN_GRANT,
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        refresh_token: refreshToken,
      }).toString(),
    ),
  };
}

/** The chain step: the exchange of the successor a token response carries. */
export function nextRefreshRequest(responseBody: string): BenchRequest | undefined {
  try {
    const token = (JSON.parse(responseBody) as { refresh_token?: unknown }).refresh_token;
    return typeof token === "string" ? refreshRequest(token) : undefined;
  } catch {
    return undefined;
  }
}
