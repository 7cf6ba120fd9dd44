/**
 * The Store contract: every piece of state the service keeps, as atomic,
 * domain-level steps. Three implementations pass one contract suite
 * (test/support/store-contract.ts): memory (default), Redis, and
 * later Redis Cluster.
 *
 * Rules every implementation keeps (docs/api.md):
 * - Each method is ONE atomic step (one Lua script or one atomic command on
 *   Redis). Every key a step touches shares the user's hash tag, so each step
 *   runs on one cluster slot. Two keys are global, not per user: a DPoP
 *   proof mark and the client address's failure bucket. On standalone Redis
 *   they join the step's script; on a cluster each costs one more round trip
 *   (redis-store.ts says how).
 * - Nothing is read-then-written across two calls: single-use state is
 *   checked and changed inside the same step.
 * - Everything that expires carries a TTL; only active authenticators and
 *   recovery-code hashes are durable (a pending authenticator expires).
 * - The store never sees a secret in clear: TOTP secrets arrive encrypted and
 *   recovery codes arrive hashed.
 * - Time is passed in (`nowMs`) so tests drive a fake clock; TTLs are derived
 *   from it as durations.
 */

/** Failure-bucket parameters (docs/api.md): `capacity` attempts, one refilled every `refillMs`. */
export interface BucketPolicy {
  capacity: number;
  refillMs: number;
}

/**
 * The failure bucket of the client's address (the second bucket of a code
 * verification, beside the user's): `id` names the address (a keyed hash:
 * the store never sees the address itself), `policy` its capacity and refill.
 * Every code evaluated takes one attempt from it as well as from the user's;
 * a success gives both back; while either is empty every code is refused.
 */
export interface AddressBucket {
  id: string;
  policy: BucketPolicy;
}

/**
 * A refused code verification: `retryAfterSeconds` is the longer wait of the
 * empty buckets. `by` names them when the address's bucket is among them
 * (absent: the user's bucket alone).
 */
export interface LockedResult {
  kind: "locked";
  retryAfterSeconds: number;
  by?: "address" | "both";
}

/** The refusal when the user's (`userWait`) or the address's bucket is empty: the longer wait. */
export function lockedResult(userWait: number, addressWait: number): LockedResult {
  const retryAfterSeconds = Math.max(userWait, addressWait);
  if (addressWait === 0) return { kind: "locked", retryAfterSeconds };
  return { kind: "locked", retryAfterSeconds, by: userWait > 0 ? "both" : "address" };
}

/** An OTP authenticator as stored. `encryptedSecret` is opaque to the store. */
export interface StoredAuthenticator {
  /** Without the `totp|` prefix. */
  id: string;
  encryptedSecret: string;
  active: boolean;
  /** Last accepted TOTP time step (RFC 6238 §5.2 replay rule); -1 when none yet. */
  lastStep: number;
}

/** Identifies one mfa_token's single-use state. */
export interface MfaTokenRef {
  userId: string;
  /** The token's unique id (`jti`). */
  tokenId: string;
  /** When the token expires; the consumed marker lives until then. */
  expiresAtMs: number;
}

/**
 * A DPoP proof to record as used (RFC 9449 §11.1) inside the first atomic
 * step of a grant, so a DPoP verify costs no extra round trip. `id` names the
 * proof (key thumbprint and `jti`); it is remembered for `ttlMs`.
 */
export interface ProofMark {
  id: string;
  ttlMs: number;
}

/** The rememberOnce scope proof marks share in every store: one proof, one use, globally. */
export const PROOF_SCOPE = "dpop";

/**
 * Result of the first round trip of a code verification. When `ready`, one
 * attempt has already been taken from the user's failure bucket ("charge
 * first"): a wrong code needs no second round trip, and a success gives the
 * attempt back in `commitOtp` (a success does not drain the bucket).
 */
export type BeginVerifyResult =
  /** The ProofMark was already recorded: nothing changed. */
  | { kind: "proof_replayed" }
  | { kind: "mfa_token_used" }
  | LockedResult
  | { kind: "ready"; authenticator: StoredAuthenticator | null };

export interface CommitOtpInput {
  token: MfaTokenRef;
  authenticatorId: string;
  /** The matched time step; must be strictly greater than the stored `lastStep`. */
  step: number;
  nowMs: number;
  bucket: BucketPolicy;
  /** The address bucket given to `beginVerify`, if any: its attempt is given back too. */
  address?: AddressBucket;
}

/**
 * `committed`: the mfa_token is consumed, `lastStep` = step, a pending
 * authenticator is now active, and the bucket attempts taken in
 * `beginVerify` are given back. Any other result changed nothing.
 */
export type CommitOtpResult = "committed" | "mfa_token_used" | "replayed" | "authenticator_changed";

export interface UserFactors {
  otp: StoredAuthenticator | null;
  hasRecoveryCode: boolean;
}

export type AssociateResult =
  | { kind: "already_enrolled" }
  /**
   * `recoveryCodeStored`: the recovery-code hash was stored (the user's first
   * association). `replaced`: a live pending authenticator was replaced (the
   * `authenticator_replaced` event; an expired one does not count).
   */
  | { kind: "pending_created"; recoveryCodeStored: boolean; replaced: boolean };

/**
 * When a pending authenticator expires (SPEC §4 Pending enrollments):
 * `ttlMs` after `nowMs`. Until its first verified code activates it; an
 * expired one reads as absent everywhere (not listed, its code row 9, a new
 * Associate allowed) and is then deleted (Redis TTL, PostgreSQL sweep).
 */
export interface PendingExpiry {
  nowMs: number;
  ttlMs: number;
}

export type RedeemRecoveryCodeResult =
  | { kind: "proof_replayed" }
  | { kind: "mfa_token_used" }
  | LockedResult
  /** Wrong code (or no code stored): one attempt was taken from the bucket(s). */
  | { kind: "invalid" }
  /** The mfa_token is consumed and the stored hash replaced by `newCodeHash`. */
  | { kind: "redeemed" };

export interface Store {
  /**
   * Round trip 1 of a verify, in order: the DPoP proof (when given) not
   * used before, and recorded (else `proof_replayed`); the mfa_token not yet consumed
   * (else `mfa_token_used`); the failure bucket — and the address bucket,
   * when given — not empty (else `locked`, nothing changed); then take one
   * attempt from each and return the user's OTP authenticator (active, or
   * the latest pending; null when none).
   */
  beginVerify(
    token: MfaTokenRef,
    nowMs: number,
    bucket: BucketPolicy,
    proof?: ProofMark,
    address?: AddressBucket,
  ): Promise<BeginVerifyResult>;

  /** Round trip 2 of a successful verify; all-or-nothing. */
  commitOtp(input: CommitOtpInput): Promise<CommitOtpResult>;

  /**
   * Whether the mfa_token's consumed marker is set (one EXISTS). Used by the
   * read-mostly /mfa/* calls for error row 6; the grants check it inside
   * their own atomic steps instead.
   */
  isMfaTokenConsumed(token: MfaTokenRef): Promise<boolean>;

  /** The user's OTP authenticator (active or pending), or null. */
  getAuthenticator(userId: string): Promise<StoredAuthenticator | null>;

  /**
   * Every factor of the user in one step (the MFA API's list and challenge):
   * the OTP authenticator (active or pending, or null) and whether a
   * recovery-code hash is stored.
   */
  getFactors(userId: string): Promise<UserFactors>;

  /**
   * Enrollment: refused while an active authenticator exists; otherwise
   * stores `authenticator` as pending (replacing any earlier pending one),
   * expiring as `expiry` says, and, when the user has none yet,
   * `recoveryCodeHash`. Without `expiry` (store tests only) the pending
   * authenticator does not expire; the service always passes one.
   * Activation (`commitOtp`) makes it durable.
   */
  associatePending(
    userId: string,
    authenticator: { id: string; encryptedSecret: string },
    recoveryCodeHash: string,
    expiry?: PendingExpiry,
  ): Promise<AssociateResult>;

  /** Removes the user's authenticator with this id; false when there is none. */
  deleteAuthenticator(userId: string, authenticatorId: string): Promise<boolean>;

  /**
   * The recovery grant in one step: the DPoP proof (when given) recorded
   * once, as in beginVerify; mfa_token not consumed; bucket not
   * empty (nor the address bucket, when given); compare `codeHash` with the
   * stored hash; on a match consume the mfa_token and store `newCodeHash`;
   * on a mismatch take one attempt (from each bucket).
   */
  redeemRecoveryCode(
    token: MfaTokenRef,
    codeHash: string,
    newCodeHash: string,
    nowMs: number,
    bucket: BucketPolicy,
    proof?: ProofMark,
    address?: AddressBucket,
  ): Promise<RedeemRecoveryCodeResult>;

  /**
   * Records a single-use value (a DPoP proof's or client assertion's `jti`)
   * for `ttlMs`; true the first time, false while it is remembered.
   * `scope` namespaces the value (e.g. "dpop", "assertion:<client_id>").
   */
  rememberOnce(scope: string, value: string, ttlMs: number): Promise<boolean>;

  /**
   * The administrator's ResetUserMfa (SPEC §3), in one step: removes the
   * user's OTP authenticator (active or pending) and recovery code. Returns
   * how many authenticators were removed (0 for an unknown user).
   */
  resetUserFactors(userId: string): Promise<number>;

  /** UnlockUser: the user's failure bucket is full again (its record deleted), in one step. */
  unlockUser(userId: string): Promise<void>;

  /**
   * DeleteUserData: erases every record of this store that names the user
   * (authenticator, recovery code, failure bucket, consumed mfa_token marks;
   * sessions are the SessionStore's). The factors go first, in one step; the
   * rest in bounded batches, so a user with many records never blocks the
   * store. Afterwards nothing this store holds names the user.
   */
  eraseUser(userId: string): Promise<void>;

  /**
   * A refused internal API key (SPEC §2): takes one attempt from the
   * address's failure bucket unless it is empty, in one step. Returns 0 when
   * taken, else the whole seconds until one refills (nothing taken).
   */
  takeAddressAttempt(address: AddressBucket, nowMs: number): Promise<number>;

  /** The address bucket's wait in whole seconds, read only (0: not empty). */
  addressRetryAfter(address: AddressBucket, nowMs: number): Promise<number>;

  /** Throws when the store is unreachable (readiness). */
  ping(): Promise<void>;

  close(): Promise<void>;
}

/** Thrown by a store when its backend cannot be reached (error row 12). */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
}
