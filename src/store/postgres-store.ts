/**
 * PostgreSQL implementation of the Store contract (store.ts; docs/architecture.md).
 *
 * Every method is ONE statement, so one round trip: a function of the schema
 * (migrations/0001-store.sql) for the steps that check and change state, a
 * plain SELECT for the reads. A function runs as one transaction and holds
 * the user's lock from its first line, so each step is as atomic as its Lua
 * twin (redis-scripts.ts), and the global rows a step touches (a DPoP proof's
 * mark, an address's bucket) change in one atomic statement each. A verify's
 * success path is two statements (beginVerify, commitOtp), DPoP and address
 * bucket included.
 *
 * Authenticators and recovery-code hashes are durable by PostgreSQL's own
 * commit: the server answers only once the transaction is in its WAL (and,
 * with a synchronous standby, on the standby: docs/operations.md).
 *
 * Expiry: every expiring row holds its absolute expiry, computed from the
 * `nowMs` the caller passes (the store's clock where a method takes none);
 * reads treat a row whose expiry has passed as absent, and postgres-sweeper.ts
 * deletes such rows later.
 */
import type { Clock } from "../util/clock.js";
import type { Database } from "./postgres-client.js";
import {
  ADDRESS_WAIT,
  ASSOCIATE_PENDING,
  BEGIN_VERIFY,
  COMMIT_OTP,
  DELETE_AUTHENTICATOR,
  ERASE_USER,
  FIRST_USE,
  GET_AUTHENTICATOR,
  GET_FACTORS,
  IS_MFA_TOKEN_CONSUMED,
  PING,
  REDEEM_RECOVERY_CODE,
  RESET_USER_FACTORS,
  singleUseKey,
  TAKE_ADDRESS_ATTEMPT,
  UNLOCK_USER,
} from "./postgres-statements.js";
import {
  type AddressBucket,
  type AssociateResult,
  type BeginVerifyResult,
  type CommitOtpResult,
  type LockedResult,
  type MfaTokenRef,
  PROOF_SCOPE,
  type ProofMark,
  type RedeemRecoveryCodeResult,
  type Store,
  type StoredAuthenticator,
} from "./store.js";

export interface PostgresStoreOptions {
  /** Clock of the methods that take no `nowMs` (`rememberOnce`, `isMfaTokenConsumed`). */
  clock: Clock;
  /** Also closes the database on close() (false: the caller owns it). */
  ownsDatabase?: boolean;
}

/** Rows of one table erased per eraseUser statement (DeleteUserData). */
const ERASE_BATCH = 500;

/** Times and durations go to the database as integer milliseconds. */
const ms = (value: number): number => Math.floor(value);
/** A consumed mark lives until the token expires (at least 1 ms, as on Redis). */
const markExpiresAt = (token: MfaTokenRef, nowMs: number): number =>
  ms(nowMs) + Math.max(1, Math.ceil(token.expiresAtMs - nowMs));
const expiresAfter = (nowMs: number, ttlMs: number): number =>
  ms(nowMs) + Math.max(1, Math.ceil(ttlMs));

interface AuthenticatorRow {
  id: string | null;
  secret: string | null;
  active: boolean | null;
  /** bigint: node-postgres returns it as a string. */
  last_step: string | null;
}

interface CodeStepRow {
  outcome: string;
  retry_after: number | null;
  locked_by: string | null;
}

function unexpected(reply: unknown): Error {
  return new Error(`unexpected reply from the postgres store: ${JSON.stringify(reply)}`);
}

function parseAuthenticator(row: AuthenticatorRow | undefined): StoredAuthenticator | null {
  if (row === undefined || row.id === null) return null;
  if (typeof row.secret !== "string" || row.last_step === null) throw unexpected(row);
  return {
    id: row.id,
    encryptedSecret: row.secret,
    active: row.active === true,
    lastStep: Number(row.last_step),
  };
}

/** The outcomes both code steps share: the proof replayed, the mfa_token used, a bucket empty. */
function parseSharedOutcome(
  row: CodeStepRow,
): { kind: "proof_replayed" } | { kind: "mfa_token_used" } | LockedResult | undefined {
  switch (row.outcome) {
    case "proof_replayed":
      return { kind: "proof_replayed" };
    case "used":
      return { kind: "mfa_token_used" };
    case "locked": {
      const seconds = row.retry_after;
      if (typeof seconds !== "number") throw unexpected(row);
      if (row.locked_by === "address" || row.locked_by === "both") {
        return { kind: "locked", retryAfterSeconds: seconds, by: row.locked_by };
      }
      if (row.locked_by !== null) throw unexpected(row);
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

/** The proof's parameters of a code step: its key and expiry, or two NULLs. */
const proofParameters = (proof: ProofMark | undefined, nowMs: number) =>
  proof === undefined
    ? [null, null]
    : [singleUseKey(PROOF_SCOPE, proof.id), expiresAfter(nowMs, proof.ttlMs)];

/** The address bucket's parameters of a code step: id, capacity, refill, or three NULLs. */
const addressParameters = (address: AddressBucket | undefined) =>
  address === undefined
    ? [null, null, null]
    : [address.id, address.policy.capacity, ms(address.policy.refillMs)];

export function createPostgresStore(db: Database, options: PostgresStoreOptions): Store {
  const { clock } = options;
  const one = async <Row extends object>(rows: Promise<Row[]>): Promise<Row> => {
    const [row] = await rows;
    if (row === undefined) throw unexpected(row);
    return row;
  };

  return {
    // ------------------------------------------------------------ code verification

    async beginVerify(token, nowMs, bucket, proof, address): Promise<BeginVerifyResult> {
      const row = await one(
        db.query<CodeStepRow & AuthenticatorRow>(BEGIN_VERIFY, [
          token.userId,
          token.tokenId,
          ms(nowMs),
          bucket.capacity,
          ms(bucket.refillMs),
          ...proofParameters(proof, nowMs),
          ...addressParameters(address),
        ]),
      );
      const shared = parseSharedOutcome(row);
      if (shared !== undefined) return shared;
      if (row.outcome !== "ready") throw unexpected(row);
      return { kind: "ready", authenticator: parseAuthenticator(row) };
    },

    async commitOtp(input): Promise<CommitOtpResult> {
      const { token, address } = input;
      const row = await one(
        db.query<{ outcome: string }>(COMMIT_OTP, [
          token.userId,
          token.tokenId,
          input.authenticatorId,
          input.step,
          ms(input.nowMs),
          markExpiresAt(token, input.nowMs),
          ms(input.bucket.refillMs),
          address?.id ?? null,
          address === undefined ? null : ms(address.policy.refillMs),
        ]),
      );
      const result = COMMIT_RESULTS[row.outcome];
      if (result === undefined) throw unexpected(row);
      return result;
    },

    async redeemRecoveryCode(
      token,
      codeHash,
      newCodeHash,
      nowMs,
      bucket,
      proof,
      address,
    ): Promise<RedeemRecoveryCodeResult> {
      const row = await one(
        db.query<CodeStepRow>(REDEEM_RECOVERY_CODE, [
          token.userId,
          token.tokenId,
          codeHash,
          newCodeHash,
          ms(nowMs),
          markExpiresAt(token, nowMs),
          bucket.capacity,
          ms(bucket.refillMs),
          ...proofParameters(proof, nowMs),
          ...addressParameters(address),
        ]),
      );
      const shared = parseSharedOutcome(row);
      if (shared !== undefined) return shared;
      if (row.outcome === "invalid") return { kind: "invalid" };
      if (row.outcome === "redeemed") return { kind: "redeemed" };
      throw unexpected(row);
    },

    // ------------------------------------------------------------ authenticators and recovery codes

    async getAuthenticator(userId) {
      const [row] = await db.query<AuthenticatorRow>(GET_AUTHENTICATOR, [userId, clock.nowMs()]);
      return parseAuthenticator(row);
    },

    async getFactors(userId) {
      const row = await one(
        db.query<AuthenticatorRow & { has_recovery_code: boolean }>(GET_FACTORS, [
          userId,
          clock.nowMs(),
        ]),
      );
      return { otp: parseAuthenticator(row), hasRecoveryCode: row.has_recovery_code === true };
    },

    async associatePending(
      userId,
      authenticator,
      recoveryCodeHash,
      expiry,
    ): Promise<AssociateResult> {
      const now = expiry === undefined ? clock.nowMs() : expiry.nowMs;
      const row = await one(
        db.query<{ outcome: number; replaced: boolean }>(ASSOCIATE_PENDING, [
          userId,
          authenticator.id,
          authenticator.encryptedSecret,
          recoveryCodeHash,
          ms(now),
          expiry === undefined ? null : ms(now) + Math.max(1, ms(expiry.ttlMs)),
        ]),
      );
      switch (row.outcome) {
        case 0:
          return { kind: "already_enrolled" };
        case 1:
        case 2:
          return {
            kind: "pending_created",
            recoveryCodeStored: row.outcome === 2,
            replaced: row.replaced === true,
          };
        default:
          throw unexpected(row);
      }
    },

    async deleteAuthenticator(userId, authenticatorId) {
      const row = await one(
        db.query<{ deleted: boolean }>(DELETE_AUTHENTICATOR, [
          userId,
          authenticatorId,
          clock.nowMs(),
        ]),
      );
      return row.deleted === true;
    },

    // ------------------------------------------------------------ the administrator's steps

    async resetUserFactors(userId) {
      const row = await one(db.query<{ removed: number }>(RESET_USER_FACTORS, [userId]));
      return Number(row.removed);
    },

    async unlockUser(userId) {
      await db.query(UNLOCK_USER, [userId]);
    },

    async eraseUser(userId) {
      // Batches of ERASE_BATCH rows per table, each one short transaction.
      for (;;) {
        const row = await one(db.query<{ more: boolean }>(ERASE_USER, [userId, ERASE_BATCH]));
        if (row.more !== true) return;
      }
    },

    async takeAddressAttempt(address, nowMs) {
      const row = await one(
        db.query<{ wait: number }>(TAKE_ADDRESS_ATTEMPT, [
          address.id,
          ms(nowMs),
          address.policy.capacity,
          ms(address.policy.refillMs),
        ]),
      );
      return Number(row.wait);
    },

    async addressRetryAfter(address, nowMs) {
      const row = await one(
        db.query<{ wait: number }>(ADDRESS_WAIT, [
          address.id,
          ms(nowMs),
          address.policy.capacity,
          ms(address.policy.refillMs),
        ]),
      );
      return Number(row.wait);
    },

    // ------------------------------------------------------------ mfa_token marks

    async isMfaTokenConsumed(token) {
      // No `nowMs` here: the store's clock decides whether the mark expired.
      const row = await one(
        db.query<{ consumed: boolean }>(IS_MFA_TOKEN_CONSUMED, [
          token.userId,
          token.tokenId,
          ms(clock.nowMs()),
        ]),
      );
      return row.consumed === true;
    },

    // ------------------------------------------------------------ single-use values

    async rememberOnce(scope, value, ttlMs) {
      const now = clock.nowMs();
      const row = await one(
        db.query<{ first: boolean | null }>(FIRST_USE, [
          singleUseKey(scope, value),
          ms(now),
          expiresAfter(now, ttlMs),
        ]),
      );
      return row.first === true;
    },

    // ------------------------------------------------------------ health

    async ping() {
      await db.query(PING, []);
    },

    async close() {
      if (options.ownsDatabase) await db.close();
    },
  };
}
