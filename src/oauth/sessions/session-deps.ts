import type { SessionStore } from "../../store/session-store.js";
import { createRefreshTokenCodec, type RefreshTokenCodec } from "./refresh-token-codec.js";
import { createRefreshTokenHasher, type RefreshTokenHasher } from "./refresh-token-hash.js";

/** A refresh-token reuse: the family was revoked (a security event worth one log line). */
export interface ReuseDetected {
  userId: string;
  clientId: string;
  familyId: string;
}

/** What the session use cases need, built once at start-up. */
export interface SessionDeps {
  store: SessionStore;
  codec: RefreshTokenCodec;
  hash: RefreshTokenHasher;
  /** Called when a reuse revokes a family; never given a token. */
  onReuseDetected?: (event: ReuseDetected) => void;
  /** MAX_SESSIONS_PER_USER: a login beyond it revokes the user's oldest family (absent: no cap). */
  maxFamiliesPerUser?: number;
}

/** Keys for sealing and hashing are derived from SECRETS_KEY, one per purpose. */
export function createSessionDeps(
  secretsKey: Buffer,
  store: SessionStore,
  options: { onReuseDetected?: (event: ReuseDetected) => void; maxFamiliesPerUser?: number } = {},
): SessionDeps {
  return {
    store,
    codec: createRefreshTokenCodec(secretsKey),
    hash: createRefreshTokenHasher(secretsKey),
    ...(options.onReuseDetected ? { onReuseDetected: options.onReuseDetected } : {}),
    ...(options.maxFamiliesPerUser !== undefined
      ? { maxFamiliesPerUser: options.maxFamiliesPerUser }
      : {}),
  };
}
