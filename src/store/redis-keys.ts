/**
 * Redis key naming (docs/architecture.md).
 *
 * Every key of one user carries the hash tag `{u:<base64url(userId)>}`, so
 * every Lua script that touches several of them runs on one cluster slot.
 * base64url keeps arbitrary user ids (`auth0|…`, unicode) free of `{`, `}`
 * and `:`, so the tag can never be cut short by the id itself.
 *
 *   ts:{u:…}:otp          hash: id, secret (encrypted), active, last_step   durable once active;
 *                                                                           pending: TTL PENDING_ENROLLMENT_TTL
 *   ts:{u:…}:rc           string: recovery-code hash                         durable
 *   ts:{u:…}:fb           string: failure bucket `fullAtMs`                  TTL = until full
 *   ts:{u:…}:mt:<jti>     string: consumed-mfa_token marker                  TTL = until token expiry
 *   ts:once:<scope>:<h>   string: single-use value (DPoP / assertion jti)    TTL = ttlMs
 *   ts:ab:<id>            string: client address's failure bucket `fullAtMs` TTL = until full
 *   ts:dataset            string: the dataset marker (cluster: ts:dataset:{<tag>} per slot;
 *                         redis-dataset-marker.ts)                           durable
 */
import { createHash } from "node:crypto";

const PREFIX = "ts:";

const b64url = (value: string): string => Buffer.from(value, "utf8").toString("base64url");

/** The hash tag shared by every key of one user. */
export function userTag(userId: string): string {
  return `{u:${b64url(userId)}}`;
}

export interface UserKeys {
  /**
   * What every key naming the user starts with (sessions' keys too,
   * session-keys.ts): the user's hash tag closes it, so no other user's
   * keys share it. DeleteUserData erases what matches it.
   */
  prefix: string;
  /** Authenticator hash. */
  otp: string;
  /** Recovery-code hash. */
  recoveryCode: string;
  /** Failure bucket (GCRA `fullAtMs`). */
  failureBucket: string;
  /** Consumed marker of one mfa_token. */
  mfaToken(tokenId: string): string;
}

export function userKeys(userId: string): UserKeys {
  const base = `${PREFIX}${userTag(userId)}:`;
  return {
    prefix: base,
    otp: `${base}otp`,
    recoveryCode: `${base}rc`,
    failureBucket: `${base}fb`,
    mfaToken: (tokenId) => `${base}mt:${tokenId}`,
  };
}

/**
 * Key of a `rememberOnce` value. No hash tag on purpose: the whole key is
 * hashed, so single-use values spread over every cluster slot instead of
 * making one scope a hot slot (a SET NX touches one key only). The value is
 * SHA-256 hashed so a caller-supplied `jti` of any length gives a key of fixed
 * size.
 */
export function onceKey(scope: string, value: string): string {
  const digest = createHash("sha256").update(value, "utf8").digest("base64url");
  return `${PREFIX}once:${b64url(scope)}:${digest}`;
}

/**
 * Key of a client address's failure bucket. `id` is already a keyed hash of
 * the address (the store never sees an address): used as it is, after a
 * check that it cannot reach into another key's name. No hash tag, like
 * onceKey: addresses spread over every cluster slot.
 */
export function addressBucketKey(id: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) throw new Error("address bucket id must be base64url");
  return `${PREFIX}ab:${id}`;
}
