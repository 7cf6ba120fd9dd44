/**
 * Redis keys of refresh-token families (docs/sessions.md). Both live under
 * the user's hash tag (redis-keys.ts `userTag`), next to the user's other
 * keys, so every session step is one script on one cluster slot, and
 * revoking all of a user's families is one step too:
 *
 *   ts:{u:…}:rf:<familyId>  hash: l (live token hashes, concatenated),
 *                           p (previous token hash), pf (its first exchange, ms),
 *                           s (family start, ms), u (last exchange, ms)
 *                                                  TTL = until the family's deadline
 *   ts:{u:…}:rfi            sorted set: familyId → deadline (ms, +inf when none)
 *                                                  TTL = until the latest deadline
 *   ts:{u:…}:rfx:<nonce>    a revoked index (renamed), emptied in batches    TTL kept from the index
 *
 * A family's deadline is the earlier of start + absolute lifetime and last
 * exchange + idle lifetime; with neither limit the keys have no TTL.
 */
import { userTag } from "./redis-keys.js";

const PREFIX = "ts:";

export interface SessionKeys {
  /** The user's family index (sorted set). */
  index: string;
  /** Prefix of the user's family keys (the family id follows). */
  familyPrefix: string;
  /** One family's hash. */
  family(familyId: string): string;
  /** Where a revoked index goes until its families are deleted (`nonce`: unique per revocation). */
  revokedIndex(nonce: string): string;
}

export function sessionKeys(userId: string): SessionKeys {
  const familyPrefix = `${PREFIX}${userTag(userId)}:rf:`;
  return {
    index: `${PREFIX}${userTag(userId)}:rfi`,
    familyPrefix,
    family: (familyId) => familyPrefix + familyId,
    revokedIndex: (nonce) => `${PREFIX}${userTag(userId)}:rfx:${nonce}`,
  };
}
