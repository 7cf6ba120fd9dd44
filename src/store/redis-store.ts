/**
 * Redis implementation of the Store contract (SPEC §7).
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
import {
  Cluster,
  type ClusterNode,
  type ClusterOptions,
  type Command,
  Redis,
  type RedisOptions,
} from "ioredis";
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
  StoreUnavailableError,
} from "./store.js";

/**
 * Client options chosen to fail fast (SPEC §5: a store outage must become a
 * prompt error, never a hung request):
 * - `commandTimeout: 2000`: every command settles within 2 s, including one
 *   queued while disconnected or sent to a server that stopped answering
 *   without closing the socket.
 * - `enableOfflineQueue` stays on: commands issued while the first connection
 *   (or a reconnection) is in progress wait for it instead of failing at
 *   once, which would be too strict at startup; `maxRetriesPerRequest: 1`
 *   flushes that queue with an error after two failed connection attempts.
 * - `retryStrategy`: reconnect forever, at most 500 ms apart, so the service
 *   recovers by itself once Redis is back; with `maxRetriesPerRequest: 1`
 *   a queued command is then rejected after about 1 s during an outage
 *   (measured: 0.5–1 s; `commandTimeout` is the hard bound).
 * - `connectTimeout: 1000`: a connection attempt to an unreachable host
 *   fails in 1 s rather than the 10 s default.
 * - `autoResendUnfulfilledCommands: false`: a script in flight when the
 *   connection dropped may already have run; resending it could apply it
 *   twice (e.g. charge the failure bucket twice), so it fails instead
 *   (fail closed; `commandTimeout` guarantees it settles).
 * - `enableAutoPipelining: true`: commands issued in the same event-loop
 *   tick (by concurrent requests) leave in one socket write. Each request
 *   still sends the same commands in the same order and waits for each
 *   reply: round trips per request are unchanged, `write(2)` calls per
 *   request fall (the top frame after the signature in the success-path
 *   profile; README "Performance").
 */
export const REDIS_CLIENT_OPTIONS: RedisOptions = {
  enableAutoPipelining: true,
  commandTimeout: 2000,
  connectTimeout: 1000,
  maxRetriesPerRequest: 1,
  enableOfflineQueue: true,
  autoResendUnfulfilledCommands: false,
  retryStrategy: (times) => Math.min(100 * 2 ** (times - 1), 500),
};

export interface RedisClientOptions {
  /** Connection errors also reach callers as StoreUnavailableError; this is for logging. */
  onError?: (err: Error) => void;
  /** Overrides of REDIS_CLIENT_OPTIONS. */
  redis?: RedisOptions;
}

/** A client with REDIS_CLIENT_OPTIONS; it starts connecting at once. */
export function createRedisClient(url: string, options: RedisClientOptions = {}): Redis {
  const client = new Redis(url, { ...REDIS_CLIENT_OPTIONS, ...options.redis });
  // Without a listener ioredis prints every reconnection error to stderr.
  client.on("error", (err: Error) => options.onError?.(err));
  return client;
}

/**
 * Options of a Cluster client (SPEC §6 `REDIS_CLUSTER_NODES`), chosen for the
 * same fail-fast, fail-closed behaviour as REDIS_CLIENT_OPTIONS. ioredis
 * splits them in two levels, and not every standalone option means the same
 * thing on a cluster:
 * - Per-node connections (`redisOptions`): `commandTimeout`,
 *   `connectTimeout` and `autoResendUnfulfilledCommands` as standalone.
 *   `retryStrategy` and `enableOfflineQueue` are not node options here
 *   (ioredis forces them: a lost node is not reconnected, the cluster
 *   refreshes its slots instead), so they are not passed.
 * - `enableOfflineQueue: true` (cluster level): commands issued before the
 *   cluster is ready (start-up, reconnection) wait for it. That queue has no
 *   limit of its own (`maxRetriesPerRequest` is standalone only), so
 *   `createRedisClusterClient` gives every command the `commandTimeout`
 *   deadline from the moment it is issued, queued or not.
 * - `clusterRetryStrategy`: reconnect forever, at most 500 ms apart, so the
 *   service recovers by itself.
 * - `scaleReads: "master"`: every read goes to the slot's master. Single-use
 *   state (the consumed marker behind `isMfaTokenConsumed`, the
 *   authenticator's `last_step`) must never be read from a lagging replica.
 * - `retryDelayOnFailover: 0`: a command whose node connection closed may
 *   already have run (a script in flight); ioredis would resend it after a
 *   delay, applying it twice (e.g. charging the failure bucket twice). It
 *   fails instead, as `autoResendUnfulfilledCommands: false` does standalone.
 *   MOVED, ASK, TRYAGAIN and CLUSTERDOWN mean the command did not run, so
 *   they are still retried (`retryDelayOnClusterDown`, `retryDelayOnTryAgain`,
 *   at most `maxRedirections` times, within the deadline).
 * - `slotsRefreshTimeout: 1000`, `slotsRefreshInterval: 5000`: the topology
 *   refresh (CLUSTER SLOTS) gives up on a dead node in 1 s and runs every
 *   5 s, on top of the refresh a MOVED reply triggers.
 * - `enableReadyCheck: true`: ready only once CLUSTER INFO says the cluster
 *   is not failing.
 * - `enableAutoPipelining: true`: as standalone; ioredis groups the tick's
 *   commands per node.
 */
export const REDIS_CLUSTER_OPTIONS: ClusterOptions = {
  enableAutoPipelining: true,
  redisOptions: {
    commandTimeout: 2000,
    connectTimeout: 1000,
    autoResendUnfulfilledCommands: false,
  },
  enableOfflineQueue: true,
  enableReadyCheck: true,
  scaleReads: "master",
  clusterRetryStrategy: (times) => Math.min(100 * 2 ** (times - 1), 500),
  retryDelayOnFailover: 0,
  retryDelayOnClusterDown: 100,
  retryDelayOnTryAgain: 100,
  maxRedirections: 16,
  slotsRefreshTimeout: 1000,
  slotsRefreshInterval: 5000,
};

export interface RedisClusterClientOptions {
  /** Connection errors also reach callers as StoreUnavailableError; this is for logging. */
  onError?: (err: Error) => void;
  /** Overrides of REDIS_CLUSTER_OPTIONS (`redisOptions` is merged, not replaced). */
  cluster?: ClusterOptions;
}

/**
 * A Cluster whose commands all settle within the nodes' `commandTimeout`,
 * counted from when they are issued. Without it, a command issued while the
 * cluster is unreachable waits in the cluster's offline queue for as long as
 * the outage lasts (the nodes' `commandTimeout` only starts once a command
 * reaches a node). A command that timed out while queued is dropped rather
 * than sent late, when the queue is replayed through `sendCommand`.
 */
class DeadlineCluster extends Cluster {
  override sendCommand(command: Command, stream?: unknown, node?: unknown): unknown {
    if (command.isSettled) return command.promise;
    const deadline = this.options.redisOptions?.commandTimeout;
    // Sets the timer once; the node keeps it (Command#setTimeout is a no-op when set).
    if (typeof deadline === "number") command.setTimeout(deadline);
    return super.sendCommand(command, stream as Parameters<Cluster["sendCommand"]>[1], node);
  }
}

/** A Cluster client with REDIS_CLUSTER_OPTIONS; it starts connecting at once. */
export function createRedisClusterClient(
  nodes: ClusterNode[],
  options: RedisClusterClientOptions = {},
): Cluster {
  const merged: ClusterOptions = {
    ...REDIS_CLUSTER_OPTIONS,
    ...options.cluster,
    redisOptions: { ...REDIS_CLUSTER_OPTIONS.redisOptions, ...options.cluster?.redisOptions },
  };
  // The store reads replies in the default (RESP2, "legacy") mapping.
  const cluster = new DeadlineCluster(
    nodes,
    merged as ConstructorParameters<typeof DeadlineCluster>[1],
  );
  // Without a listener ioredis prints cluster errors to stderr; node errors
  // (one master unreachable) are worth logging too.
  cluster.on("error", (err: Error) => options.onError?.(err));
  cluster.on("node error", (err: Error) => options.onError?.(err));
  return cluster;
}

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

/**
 * Reply errors that mean "Redis cannot serve right now" rather than "this
 * code sent something wrong" (the latter are bugs and propagate as they are).
 */
const UNAVAILABLE_REPLY =
  /^(LOADING|BUSY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|READONLY|OOM|NOREPLICAS)\b/;

function toStoreError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  if (err instanceof Error && err.name === "ReplyError" && !UNAVAILABLE_REPLY.test(err.message)) {
    return err;
  }
  // Anything else is about the connection: ECONNREFUSED, "Connection is
  // closed.", MaxRetriesPerRequestError, "Command timed out", …
  const reason = err instanceof Error ? err.message : String(err);
  return new StoreUnavailableError(`redis unavailable: ${reason}`, { cause: err });
}

async function guarded<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw toStoreError(err);
  }
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

function parseLocked(reply: unknown[]): { kind: "locked"; retryAfterSeconds: number } {
  const seconds = Number(reply[1]);
  if (!Number.isFinite(seconds)) throw unexpected(reply);
  return { kind: "locked", retryAfterSeconds: seconds };
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
        switch (reply[0]) {
          case "proof_replayed":
            return { kind: "proof_replayed" };
          case "used":
            return { kind: "mfa_token_used" };
          case "locked":
            return parseLocked(reply);
          case "ready":
            return { kind: "ready", authenticator: parseAuthenticator(reply.slice(1)) };
          default:
            throw unexpected(reply);
        }
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
        switch (reply[0]) {
          case "proof_replayed":
            return { kind: "proof_replayed" };
          case "used":
            return { kind: "mfa_token_used" };
          case "locked":
            return parseLocked(reply);
          case "invalid":
            return { kind: "invalid" };
          case "redeemed":
            return { kind: "redeemed" };
          default:
            throw unexpected(reply);
        }
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
