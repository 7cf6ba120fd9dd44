/**
 * The SessionStore contract: refresh-token families (one login's session
 * each) as domain-level atomic steps. A memory and a Redis implementation
 * (standalone and Cluster) pass one contract suite
 * (test/support/session-store-contract.ts), which keeps the Lua scripts
 * (session-scripts.ts) and their memory twin (memory-session-store.ts) in
 * lockstep.
 *
 * Rules every implementation keeps:
 * - Each method is ONE atomic step: one Lua script on Redis, every key in the
 *   user's hash tag, so it runs on one cluster slot in one round trip.
 * - Only keyed hashes of tokens are stored (oauth/sessions/refresh-token-hash.ts),
 *   never a token.
 * - Every record carries a TTL no longer than its family's remaining
 *   lifetime; a family with neither an absolute nor an idle limit has none.
 * - A revoked family is deleted: it answers exactly as an unknown one.
 * - Time is passed in (`nowMs`), so tests drive a fake clock.
 *
 * A family holds: its live tokens (normally one; see `exchange`), the
 * immediately previous token and when it was first exchanged, the start of
 * the family and its last exchange.
 */
import type { ProofMark } from "./store.js";

/** Where a family lives: both come out of the refresh token itself. */
export interface FamilyRef {
  userId: string;
  familyId: string;
}

/**
 * A client's refresh-token rules as the store applies them (from its
 * `refresh_token` settings, at the time of the call).
 */
export interface SessionPolicy {
  /** Rotating: every exchange retires the presented token and issues a successor. */
  rotating: boolean;
  /** How long after its first exchange the previous token may be exchanged again; 0: never. */
  leewayMs: number;
  /** From the family's start; null: no limit. */
  absoluteLifetimeMs: number | null;
  /** From the family's last exchange; null: no limit. */
  idleLifetimeMs: number | null;
}

export interface CreateFamilyInput {
  family: FamilyRef;
  /** Hash of the family's first token. */
  tokenHash: string;
  nowMs: number;
  policy: SessionPolicy;
  /**
   * MAX_SESSIONS_PER_USER: at most this many live families per user. When the
   * user already holds this many, the oldest go in the same step — those that
   * end first (for an idle lifetime: the least recently used; families with
   * no limit last), then by start — at most REVOKED_PER_LOGIN of them, so a
   * user far above the cap (from before it) converges over a few logins.
   * Absent: no cap.
   */
  maxFamilies?: number;
}

/** The most families one createFamily revokes to stay under the cap (bounded work per login). */
export const REVOKED_PER_LOGIN = 100;

/**
 * Rows or keys one step deletes when revoking every family of a user: the
 * revocation takes effect at once (one O(1) step), the records go in
 * batches of this size (one short step each), so no step's work grows with
 * the user's families.
 */
export const REVOKE_BATCH = 500;

export interface ExchangeInput {
  family: FamilyRef;
  /** Hash of the token presented. */
  presentedHash: string;
  /** Hash of the successor the caller will hand out if the step rotates. */
  successorHash: string;
  nowMs: number;
  policy: SessionPolicy;
  /**
   * The request's DPoP proof, recorded as used inside this step (RFC 9449
   * §11.1), as the code grants do; `proof_replayed` when it was seen before.
   */
  proof?: ProofMark;
}

/**
 * At most this many live tokens per family: a leeway re-exchange adds one
 * (the earlier successors stay usable until one of them is exchanged), and a
 * burst within the leeway cannot grow a family without bound; the oldest
 * successor is dropped first.
 */
export const MAX_LIVE_TOKENS = 8;

export type ExchangeResult =
  /** The DPoP proof was recorded before: nothing changed. */
  | { kind: "proof_replayed" }
  /**
   * A live token was exchanged (rotating): it is now the family's previous
   * token, first exchanged now; the successor is the only live token.
   */
  | { kind: "rotated" }
  /**
   * The previous token, within the leeway of its first exchange: the
   * successor joins the live tokens; the previous token and its first-exchange
   * time stay as they were.
   */
  | { kind: "reissued" }
  /** Non-rotating: the presented token is live and stays so; the idle clock restarts. */
  | { kind: "kept" }
  /** A retired token outside the leeway (or with leeway 0): the whole family is now revoked. */
  | { kind: "reused" }
  /**
   * Unknown, revoked or expired family, or (non-rotating) a token that is not
   * the live one. Nothing changed, except that an expired family is deleted.
   */
  | { kind: "invalid" };

export interface SessionStore {
  /**
   * Starts a family whose only live token is `tokenHash`; starts and last-used
   * now; the cap applied in the same step (see `maxFamilies`). Returns how
   * many families the cap revoked.
   */
  createFamily(input: CreateFamilyInput): Promise<number>;

  /**
   * One exchange, in order: record the proof (else `proof_replayed`); the
   * family exists and has not outlived its absolute or idle lifetime (else
   * `invalid`; an expired family is deleted); then, rotating:
   * a live token → `rotated`; the previous token, leeway > 0 and at most
   * leeway since its first exchange → `reissued`; any other token of the
   * family → `reused` (family deleted). Non-rotating: a live token → `kept`,
   * anything else `invalid`. Every success records the exchange time (idle
   * lifetime) and resets the TTLs.
   */
  exchange(input: ExchangeInput): Promise<ExchangeResult>;

  /** Deletes the family (RFC 7009 revocation); true when a live family was deleted. */
  revokeFamilyByToken(family: FamilyRef, nowMs: number): Promise<boolean>;

  /**
   * Revokes every family of the user in one step, whatever their number (a
   * later exchange of any of them is `invalid`); the number of live families
   * revoked. Their records are then deleted in batches of REVOKE_BATCH (one
   * short step each) before this returns: no step's work grows with the
   * user's families (a user with 100,000 does not block Redis).
   */
  revokeUserFamilies(userId: string, nowMs: number): Promise<number>;

  /** Releases what the store owns (a store sharing another store's client owns nothing). */
  close(): Promise<void>;
}
