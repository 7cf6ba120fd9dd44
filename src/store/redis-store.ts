/**
 * Redis implementation of the Store contract (docs/architecture.md).
 *
 * Every method is ONE round trip: a Lua script from redis-scripts.ts, or one
 * atomic command (HMGET, EXISTS, SET NX PX, PING). On a cluster, a code
 * verification with a DPoP proof or an address bucket costs one more (see
 * proofArguments and addressArguments). Scripts are registered with ioredis
 * `defineCommand`: ioredis sends the full EVAL the first time on each
 * connection and EVALSHA afterwards (falling back to EVAL on NOSCRIPT), so no
 * script is ever loaded per request. Keys go in KEYS[] and share the user's
 * hash tag, so the same code runs on Redis Cluster.
 *
 * Authenticators and recovery-code hashes are durable data: production
 * checks that Redis runs with AOF and `noeviction` (redis-durability.ts), and
 * every write goes through the client's write guard (redis-write-guard.ts).
 */
import { Cluster, type ClusterNode, type Redis } from "ioredis";
import {
  createRedisClient,
  createRedisClusterClient,
  type RedisClientOptions,
  type RedisClusterClientOptions,
} from "./redis-client.js";
import { guarded } from "./redis-errors.js";
import { addressBucketKey, onceKey, type UserKeys, userKeys } from "./redis-keys.js";
import { createProofMarks, defineScripts } from "./redis-script-runner.js";
import { STORE_SCRIPTS, type StoreScriptName } from "./redis-scripts.js";
import { createRedisUserAdmin } from "./redis-user-admin.js";
import { confirmedWrite } from "./redis-write-guard.js";
import type {
  AddressBucket,
  AssociateResult,
  BeginVerifyResult,
  BucketPolicy,
  CommitOtpInput,
  CommitOtpResult,
  LockedResult,
  MfaTokenRef,
  ProofMark,
  RedeemRecoveryCodeResult,
  Store,
  StoredAuthenticator,
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
): { kind: "proof_replayed" } | { kind: "mfa_token_used" } | LockedResult | undefined {
  switch (reply[0]) {
    case "proof_replayed":
      return { kind: "proof_replayed" };
    case "used":
      return { kind: "mfa_token_used" };
    case "locked": {
      const seconds = Number(reply[1]);
      if (!Number.isFinite(seconds)) throw unexpected(reply);
      if (reply[2] === "address" || reply[2] === "both") {
        return { kind: "locked", retryAfterSeconds: seconds, by: reply[2] };
      }
      if (reply[2] !== undefined) throw unexpected(reply);
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

/** The address bucket's KEYS entry and ARGV of a code verification's script (see addressArguments). */
interface AddressArguments {
  key: string;
  /** 0: the bucket is not in the script. */
  capacity: number;
  refillMs: number;
  /** A cluster's wait found before the script (0: an attempt was taken, or none to take). */
  knownWait: number;
  /** Gives back an attempt taken before the script (cluster), when the script took none. */
  undo(): Promise<void>;
}

/**
 * Wraps a client (standalone or Cluster). `close()` quits that client.
 */
export function createRedisStore(
  client: Redis | Cluster,
  options: {
    /** Clock of the reads that take no `nowMs` (a pending authenticator's expiry). Defaults to Date.now. */
    now?: () => number;
  } = {},
): Store {
  const now = options.now ?? Date.now;
  const run = defineScripts<StoreScriptName>(client, STORE_SCRIPTS);
  const proofMark = createProofMarks(client);

  const inCluster = client instanceof Cluster;
  /** The proof mark of a code grant's first step (redis-script-runner.ts). */
  const proofArguments = (keys: UserKeys, proof: ProofMark | undefined) =>
    proofMark(keys.otp, proof);

  /**
   * Where a code verification's address bucket is checked and charged. Like
   * a proof mark, its key is global (one address, many users). Standalone
   * Redis: it is the script's last KEYS entry, no extra round trip. A
   * cluster: it is charged first with its own script (tsAddressBucketTake,
   * sent together with a proof's SET NX, so both cost one round trip) and
   * the user's script only learns its wait; `undo` gives the attempt back
   * when the user's script then took none (proof replayed, mfa_token used,
   * user's bucket empty). Across the two steps the two buckets are not one
   * atomic step, but each bucket on its own is: N concurrent wrong codes
   * from one address still take exactly its capacity.
   */
  const noAddress = (keys: UserKeys): AddressArguments => ({
    key: keys.otp,
    capacity: 0,
    refillMs: 0,
    knownWait: 0,
    undo: async () => {},
  });
  const addressArguments = async (
    keys: UserKeys,
    address: AddressBucket | undefined,
    nowMs: number,
  ): Promise<AddressArguments> => {
    if (address === undefined) return noAddress(keys);
    const key = addressBucketKey(address.id);
    const { capacity } = address.policy;
    const refillMs = ms(address.policy.refillMs);
    if (!inCluster) return { key, capacity, refillMs, knownWait: 0, undo: async () => {} };
    const wait = Number(await run("tsAddressBucketTake", [key, ms(nowMs), capacity, refillMs, 0]));
    if (!Number.isFinite(wait)) throw unexpected(wait);
    return {
      ...noAddress(keys),
      knownWait: wait,
      undo: wait > 0 ? async () => {} : () => giveAddressAttemptBack(address, nowMs),
    };
  };
  const giveAddressAttemptBack = async (address: AddressBucket, nowMs: number) => {
    await run("tsAddressBucketGiveBack", [
      addressBucketKey(address.id),
      ms(nowMs),
      ms(address.policy.refillMs),
    ]);
  };
  /** The global keys of a code verification's first step: a proof mark and an address bucket. */
  const globalArguments = async (
    keys: UserKeys,
    proof: ProofMark | undefined,
    address: AddressBucket | undefined,
    nowMs: number,
  ) => {
    const [mark, addressArgs] = await Promise.all([
      proofArguments(keys, proof),
      addressArguments(keys, address, nowMs),
    ]);
    if (mark === "replayed") {
      await addressArgs.undo();
      return "replayed" as const;
    }
    return { mark, address: addressArgs };
  };

  /**
   * The first step of both code grants (begin-verify, redeem-recovery-code):
   * their scripts share the layout KEYS = mfa_token marker, failure bucket,
   * the grant's own key, proof mark, address bucket; ARGV = now, capacity,
   * refill, the grant's own arguments, proof TTL, the address's capacity,
   * refill and known wait.
   */
  const runCodeStep = async (
    script: "tsBeginVerify" | "tsRedeemRecoveryCode",
    ownKey: "otp" | "recoveryCode",
    own: Array<string | number>,
    step: {
      token: MfaTokenRef;
      nowMs: number;
      bucket: BucketPolicy;
      proof: ProofMark | undefined;
      address: AddressBucket | undefined;
    },
  ) => {
    const { token, nowMs, bucket, proof, address } = step;
    const keys = userKeys(token.userId);
    const global = await globalArguments(keys, proof, address, nowMs);
    if (global === "replayed") return "replayed" as const;
    const { mark, address: addr } = global;
    const reply = await run(script, [
      keys.mfaToken(token.tokenId),
      keys.failureBucket,
      keys[ownKey],
      mark.key,
      addr.key,
      ms(nowMs),
      bucket.capacity,
      ms(bucket.refillMs),
      ...own,
      mark.ttl,
      addr.capacity,
      addr.refillMs,
      addr.knownWait,
    ]);
    if (!Array.isArray(reply)) throw unexpected(reply);
    return { reply: reply as unknown[], undo: addr.undo };
  };

  return {
    beginVerify: (
      token: MfaTokenRef,
      nowMs: number,
      bucket: BucketPolicy,
      proof?: ProofMark,
      address?: AddressBucket,
    ) =>
      guarded(async (): Promise<BeginVerifyResult> => {
        const request = { token, nowMs, bucket, proof, address };
        const step = await runCodeStep("tsBeginVerify", "otp", [], request);
        if (step === "replayed") return { kind: "proof_replayed" };
        const { reply, undo } = step;
        const shared = parseSharedOutcome(reply);
        if (shared !== undefined) {
          await undo();
          return shared;
        }
        if (reply[0] !== "ready") throw unexpected(reply);
        return { kind: "ready", authenticator: parseAuthenticator(reply.slice(1)) };
      }),

    commitOtp: (input: CommitOtpInput) =>
      guarded(async (): Promise<CommitOtpResult> => {
        const keys = userKeys(input.token.userId);
        const { address } = input;
        // A cluster gives the address's attempt back beside the commit (one
        // round trip for both) and takes it again if the commit failed.
        const apart = inCluster && address !== undefined;
        const inScript = address !== undefined && !apart;
        const [reply] = await Promise.all([
          run("tsCommitOtp", [
            keys.mfaToken(input.token.tokenId),
            keys.otp,
            keys.failureBucket,
            inScript ? addressBucketKey(address.id) : keys.otp,
            input.authenticatorId,
            input.step,
            ms(input.nowMs),
            markerTtl(input.token, input.nowMs),
            ms(input.bucket.refillMs),
            inScript ? ms(address.policy.refillMs) : 0,
          ]),
          apart ? giveAddressAttemptBack(address, input.nowMs) : undefined,
        ]);
        const result = typeof reply === "string" ? COMMIT_RESULTS[reply] : undefined;
        if (result === undefined) throw unexpected(reply);
        if (apart && result !== "committed") {
          await run("tsAddressBucketTake", [
            addressBucketKey(address.id),
            ms(input.nowMs),
            address.policy.capacity,
            ms(address.policy.refillMs),
            1,
          ]);
        }
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
          "x",
        );
        // A pending authenticator past its expiry is absent (its TTL removes it).
        const expiresAt = fields[4];
        if (typeof expiresAt === "string" && Number(expiresAt) <= now()) return null;
        return parseAuthenticator(fields.slice(0, 4));
      }),

    getFactors: (userId: string) =>
      guarded(async () => {
        const keys = userKeys(userId);
        const reply = await run("tsGetFactors", [keys.otp, keys.recoveryCode, ms(now())]);
        if (!Array.isArray(reply) || reply.length !== 5) throw unexpected(reply);
        return { otp: parseAuthenticator(reply.slice(0, 4)), hasRecoveryCode: reply[4] === 1 };
      }),

    associatePending: (userId, authenticator, recoveryCodeHash, expiry) =>
      guarded(async (): Promise<AssociateResult> => {
        const keys = userKeys(userId);
        const reply = await run("tsAssociatePending", [
          keys.otp,
          keys.recoveryCode,
          authenticator.id,
          authenticator.encryptedSecret,
          recoveryCodeHash,
          ms(expiry === undefined ? now() : expiry.nowMs),
          expiry === undefined ? 0 : Math.max(1, ms(expiry.ttlMs)),
        ]);
        if (!Array.isArray(reply) || reply.length !== 2) throw unexpected(reply);
        const [outcome, replaced] = reply as [unknown, unknown];
        switch (outcome) {
          case 0:
            return { kind: "already_enrolled" };
          case 1:
          case 2:
            return {
              kind: "pending_created",
              recoveryCodeStored: outcome === 2,
              replaced: replaced === 1,
            };
          default:
            throw unexpected(reply);
        }
      }),

    deleteAuthenticator: (userId, authenticatorId) =>
      guarded(async () => {
        const reply = await run("tsDeleteAuthenticator", [
          userKeys(userId).otp,
          authenticatorId,
          ms(now()),
        ]);
        return reply === 1;
      }),

    redeemRecoveryCode: (token, codeHash, newCodeHash, nowMs, bucket, proof, address) =>
      guarded(async (): Promise<RedeemRecoveryCodeResult> => {
        const specific = [codeHash, newCodeHash, markerTtl(token, nowMs)];
        const request = { token, nowMs, bucket, proof, address };
        const step = await runCodeStep("tsRedeemRecoveryCode", "recoveryCode", specific, request);
        if (step === "replayed") return { kind: "proof_replayed" };
        const { reply, undo } = step;
        if (reply[0] === "invalid") return { kind: "invalid" };
        // Anything else took no attempt: a cluster gives back the address's.
        await undo();
        const shared = parseSharedOutcome(reply);
        if (shared !== undefined) return shared;
        if (reply[0] === "redeemed") return { kind: "redeemed" };
        throw unexpected(reply);
      }),

    rememberOnce: (scope, value, ttlMs) =>
      guarded(async () => {
        // One atomic command: only the first SET NX within the TTL succeeds.
        const key = onceKey(scope, value);
        const ttl = Math.max(1, Math.ceil(ttlMs));
        const reply = await confirmedWrite(
          client,
          key,
          () => client.set(key, "1", "PX", ttl, "NX"),
          (pipeline) => pipeline.set(key, "1", "PX", ttl, "NX"),
        );
        return reply === "OK";
      }),

    // ResetUserMfa, UnlockUser, DeleteUserData; the internal key's address bucket.
    ...createRedisUserAdmin(client),

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
