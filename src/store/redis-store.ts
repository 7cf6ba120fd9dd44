/**
 * Redis implementation of the Store contract (docs/architecture.md).
 *
 * Every method is ONE round trip: a Lua script from redis-scripts.ts, or one
 * atomic command (HMGET, EXISTS, SET NX PX, PING). Scripts are registered with ioredis
 * `defineCommand`: ioredis sends the full EVAL the first time on each
 * connection and EVALSHA afterwards (falling back to EVAL on NOSCRIPT), so no
 * script is ever loaded per request. Keys go in KEYS[] and share the user's
 * hash tag, so the same code runs on Redis Cluster.
 *
 * Authenticators and recovery-code hashes are durable data: run Redis with
 * AOF (`appendonly yes`) in production.
 */
import { Cluster, type ClusterNode, type Redis } from "ioredis";
import {
  createRedisClient,
  createRedisClusterClient,
  type RedisClientOptions,
  type RedisClusterClientOptions,
} from "./redis-client.js";
import { guarded } from "./redis-errors.js";
import { onceKey, type UserKeys, userKeys } from "./redis-keys.js";
import { STORE_SCRIPTS, type StoreScriptName } from "./redis-scripts.js";
import {
  type AssociateResult,
  type BeginVerifyResult,
  type BucketPolicy,
  type CommitOtpInput,
  type CommitOtpResult,
  type MfaTokenRef,
  PROOF_SCOPE,
  type ProofMark,
  type RedeemRecoveryCodeResult,
  type Store,
  type StoredAuthenticator,
} from "./store.js";

/** A Redis Cluster store that owns its client (`close()` quits it); see connectRedisStore. */
export function connectRedisClusterStore(
  nodes: ClusterNode[],
  options: RedisClusterClientOptions = {},
): Store {
  return createRedisStore(createRedisClusterClient(nodes, options));
}

/**
 * A Redis store that owns its client (`close()` quits it). Returns at once:
 * an unreachable Redis shows up as StoreUnavailableError from the methods
 * and from `ping()` (readiness), not as a startup failure.
 */
export function connectRedisStore(url: string, options: RedisClientOptions = {}): Store {
  return createRedisStore(createRedisClient(url, options));
}

type ScriptCall = (...args: Array<string | number>) => Promise<unknown>;

/** Durations and times go to Redis as integer milliseconds. */
const ms = (value: number): number => Math.floor(value);
/** A consumed marker lives until the token expires (at least 1 ms: PX must be > 0). */
const markerTtl = (token: MfaTokenRef, nowMs: number): number =>
  Math.max(1, Math.ceil(token.expiresAtMs - nowMs));

function unexpected(reply: unknown): Error {
  return new Error(`unexpected reply from redis store script: ${JSON.stringify(reply)}`);
}

function parseAuthenticator(fields: readonly unknown[]): StoredAuthenticator | null {
  const [id, secret, active, lastStep] = fields;
  if (id === null || id === undefined) return null;
  if (typeof id !== "string" || typeof secret !== "string") throw unexpected(fields);
  return {
    id,
    encryptedSecret: secret,
    active: active === "1",
    lastStep: lastStep === null || lastStep === undefined ? -1 : Number(lastStep),
  };
}

/**
 * The outcomes the first step of both code grants shares (begin-verify and
 * redeem-recovery-code): the DPoP proof already used, the mfa_token used, the
 * bucket empty. undefined when the reply is one of the step's own outcomes.
 */
function parseSharedOutcome(
  reply: unknown[],
):
  | { kind: "proof_replayed" }
  | { kind: "mfa_token_used" }
  | { kind: "locked"; retryAfterSeconds: number }
  | undefined {
  switch (reply[0]) {
    case "proof_replayed":
      return { kind: "proof_replayed" };
    case "used":
      return { kind: "mfa_token_used" };
    case "locked": {
      const seconds = Number(reply[1]);
      if (!Number.isFinite(seconds)) throw unexpected(reply);
      return { kind: "locked", retryAfterSeconds: seconds };
    }
    default:
      return undefined;
  }
}

const COMMIT_RESULTS: Record<string, CommitOtpResult> = {
  committed: "committed",
  used: "mfa_token_used",
  changed: "authenticator_changed",
  replayed: "replayed",
};

/**
 * Wraps a client (standalone or Cluster). `close()` quits that client.
 */
export function createRedisStore(client: Redis | Cluster): Store {
  for (const [name, definition] of Object.entries(STORE_SCRIPTS)) {
    client.defineCommand(name, definition);
  }
  const commands = client as unknown as Record<StoreScriptName, ScriptCall>;
  // Called as a method: the generated function reads `this`.
  const run = (name: StoreScriptName, args: Array<string | number>): Promise<unknown> =>
    commands[name].call(client, ...args);

  /**
   * Where a grant's DPoP proof mark is recorded. Proof ids are global (one
   * proof, one use, whoever's mfa_token it comes with), so their key is not in
   * the user's slot. Standalone Redis has no slots: the mark is the script's
   * KEYS[4] and costs no extra round trip. On a cluster the key may live on
   * another node, so it is recorded first with one SET NX (one more round
   * trip, DPoP requests only) and the script gets a same-slot placeholder.
   */
  const inCluster = client instanceof Cluster;
  const proofArguments = async (
    keys: UserKeys,
    proof: ProofMark | undefined,
  ): Promise<{ key: string; ttl: number } | "replayed"> => {
    const placeholder = { key: keys.otp, ttl: 0 };
    if (proof === undefined) return placeholder;
    const key = onceKey(PROOF_SCOPE, proof.id);
    const ttl = Math.max(1, Math.ceil(proof.ttlMs));
    if (!inCluster) return { key, ttl };
    const reply = await client.set(key, "1", "PX", ttl, "NX");
    return reply === "OK" ? placeholder : "replayed";
  };

  return {
    beginVerify: (token: MfaTokenRef, nowMs: number, bucket: BucketPolicy, proof?: ProofMark) =>
      guarded(async (): Promise<BeginVerifyResult> => {
        const keys = userKeys(token.userId);
        const mark = await proofArguments(keys, proof);
        if (mark === "replayed") return { kind: "proof_replayed" };
        const reply = await run("tsBeginVerify", [
          keys.mfaToken(token.tokenId),
          keys.failureBucket,
          keys.otp,
          mark.key,
          ms(nowMs),
          bucket.capacity,
          ms(bucket.refillMs),
          mark.ttl,
        ]);
        if (!Array.isArray(reply)) throw unexpected(reply);
        const shared = parseSharedOutcome(reply);
        if (shared !== undefined) return shared;
        if (reply[0] !== "ready") throw unexpected(reply);
        return { kind: "ready", authenticator: parseAuthenticator(reply.slice(1)) };
      }),

    commitOtp: (input: CommitOtpInput) =>
      guarded(async (): Promise<CommitOtpResult> => {
        const keys = userKeys(input.token.userId);
        const reply = await run("tsCommitOtp", [
          keys.mfaToken(input.token.tokenId),
          keys.otp,
          keys.failureBucket,
          input.authenticatorId,
          input.step,
          ms(input.nowMs),
          markerTtl(input.token, input.nowMs),
          ms(input.bucket.refillMs),
        ]);
        const result = typeof reply === "string" ? COMMIT_RESULTS[reply] : undefined;
        if (result === undefined) throw unexpected(reply);
        return result;
      }),

    isMfaTokenConsumed: (token: MfaTokenRef) =>
      guarded(async () => {
        const keys = userKeys(token.userId);
        return (await client.exists(keys.mfaToken(token.tokenId))) === 1;
      }),

    getAuthenticator: (userId: string) =>
      guarded(async () => {
        const fields = await client.hmget(
          userKeys(userId).otp,
          "id",
          "secret",
          "active",
          "last_step",
        );
        return parseAuthenticator(fields);
      }),

    getFactors: (userId: string) =>
      guarded(async () => {
        const keys = userKeys(userId);
        const reply = await run("tsGetFactors", [keys.otp, keys.recoveryCode]);
        if (!Array.isArray(reply) || reply.length !== 5) throw unexpected(reply);
        return { otp: parseAuthenticator(reply.slice(0, 4)), hasRecoveryCode: reply[4] === 1 };
      }),

    associatePending: (userId, authenticator, recoveryCodeHash) =>
      guarded(async (): Promise<AssociateResult> => {
        const keys = userKeys(userId);
        const reply = await run("tsAssociatePending", [
          keys.otp,
          keys.recoveryCode,
          authenticator.id,
          authenticator.encryptedSecret,
          recoveryCodeHash,
        ]);
        switch (reply) {
          case 0:
            return { kind: "already_enrolled" };
          case 1:
            return { kind: "pending_created", recoveryCodeStored: false };
          case 2:
            return { kind: "pending_created", recoveryCodeStored: true };
          default:
            throw unexpected(reply);
        }
      }),

    deleteAuthenticator: (userId, authenticatorId) =>
      guarded(async () => {
        const reply = await run("tsDeleteAuthenticator", [userKeys(userId).otp, authenticatorId]);
        return reply === 1;
      }),

    redeemRecoveryCode: (token, codeHash, newCodeHash, nowMs, bucket, proof) =>
      guarded(async (): Promise<RedeemRecoveryCodeResult> => {
        const keys = userKeys(token.userId);
        const mark = await proofArguments(keys, proof);
        if (mark === "replayed") return { kind: "proof_replayed" };
        const reply = await run("tsRedeemRecoveryCode", [
          keys.mfaToken(token.tokenId),
          keys.failureBucket,
          keys.recoveryCode,
          mark.key,
          ms(nowMs),
          bucket.capacity,
          ms(bucket.refillMs),
          codeHash,
          newCodeHash,
          markerTtl(token, nowMs),
          mark.ttl,
        ]);
        if (!Array.isArray(reply)) throw unexpected(reply);
        const shared = parseSharedOutcome(reply);
        if (shared !== undefined) return shared;
        if (reply[0] === "invalid") return { kind: "invalid" };
        if (reply[0] === "redeemed") return { kind: "redeemed" };
        throw unexpected(reply);
      }),

    rememberOnce: (scope, value, ttlMs) =>
      guarded(async () => {
        // One atomic command: only the first SET NX within the TTL succeeds.
        const reply = await client.set(
          onceKey(scope, value),
          "1",
          "PX",
          Math.max(1, Math.ceil(ttlMs)),
          "NX",
        );
        return reply === "OK";
      }),

    ping: () =>
      guarded(async () => {
        await client.ping();
      }),

    close: async () => {
      try {
        await client.quit();
      } catch {
        // Already closed or unreachable: drop the socket without waiting.
        client.disconnect();
      }
    },
  };
}
