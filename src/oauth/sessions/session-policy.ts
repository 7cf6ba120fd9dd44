import type { SessionPolicy } from "../../store/session-store.js";
import type { RefreshTokenSettings } from "./refresh-token-settings.js";

/** The grant name a client's `grant_types` must hold to get refresh tokens (RFC 6749 §6). */
export const REFRESH_TOKEN_GRANT = "refresh_token";

/** The scope value that asks for a refresh token (OpenID Connect Core §11). */
export const OFFLINE_ACCESS = "offline_access";

/** A client's settings as the store applies them: milliseconds, null for "no limit". */
export function sessionPolicyOf(settings: RefreshTokenSettings): SessionPolicy {
  return {
    rotating: settings.rotationType === "rotating",
    leewayMs: settings.leewaySeconds * 1000,
    absoluteLifetimeMs: settings.infiniteTokenLifetime
      ? null
      : settings.tokenLifetimeSeconds * 1000,
    idleLifetimeMs: settings.infiniteIdleTokenLifetime
      ? null
      : settings.idleTokenLifetimeSeconds * 1000,
  };
}
