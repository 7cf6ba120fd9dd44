/**
 * A client's refresh-token settings: the clients file's optional
 * `refresh_token` object, with Auth0's names and defaults, so an Auth0 client
 * configuration carries over unchanged (docs/sessions.md):
 *
 *   rotation_type                 "rotating" | "non-rotating"   default "rotating"
 *   leeway                        seconds, integer ≥ 0          default 0
 *   token_lifetime                seconds, integer ≥ 1          default 2592000 (30 days)
 *   idle_token_lifetime           seconds, integer ≥ 1          default 1296000 (15 days)
 *   infinite_token_lifetime       boolean                       default false
 *   infinite_idle_token_lifetime  boolean                       default false
 *
 * An unknown name is a problem rather than ignored: a misspelt setting would
 * otherwise silently fall back to its default (e.g. a leeway the operator
 * thinks is off).
 */

export const ROTATION_TYPES = ["rotating", "non-rotating"] as const;
export type RotationType = (typeof ROTATION_TYPES)[number];

export interface RefreshTokenSettings {
  rotationType: RotationType;
  /** How long the immediately previous token may be exchanged again after its first exchange. */
  leewaySeconds: number;
  /** Absolute lifetime of a family, from the login. Ignored when `infiniteTokenLifetime`. */
  tokenLifetimeSeconds: number;
  /** Lifetime without an exchange. Ignored when `infiniteIdleTokenLifetime`. */
  idleTokenLifetimeSeconds: number;
  infiniteTokenLifetime: boolean;
  infiniteIdleTokenLifetime: boolean;
}

export const DEFAULT_REFRESH_TOKEN_SETTINGS: Readonly<RefreshTokenSettings> = Object.freeze({
  rotationType: "rotating",
  leewaySeconds: 0,
  tokenLifetimeSeconds: 2_592_000,
  idleTokenLifetimeSeconds: 1_296_000,
  infiniteTokenLifetime: false,
  infiniteIdleTokenLifetime: false,
});

/**
 * Upper bound on any duration setting (100 years): beyond it the infinite
 * flags say what is meant, and every deadline in milliseconds stays an exact
 * integer in JavaScript and in Lua's doubles.
 */
export const MAX_LIFETIME_SECONDS = 3_153_600_000;

const KNOWN_NAMES = [
  "rotation_type",
  "leeway",
  "token_lifetime",
  "idle_token_lifetime",
  "infinite_token_lifetime",
  "infinite_idle_token_lifetime",
] as const;

/**
 * Parses one client's `refresh_token` value (`undefined` when absent: all
 * defaults). Every problem is collected, prefixed with `at`, for the config
 * loader to report at once; the settings returned then hold defaults in place
 * of the bad values.
 */
export function parseRefreshTokenSettings(
  raw: unknown,
  at: string,
): { settings: RefreshTokenSettings; problems: string[] } {
  const settings: RefreshTokenSettings = { ...DEFAULT_REFRESH_TOKEN_SETTINGS };
  const problems: string[] = [];
  if (raw === undefined) return { settings, problems };
  const where = `${at}: "refresh_token"`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { settings, problems: [`${where} must be an object`] };
  }
  const entry = raw as Record<string, unknown>;

  for (const name of Object.keys(entry)) {
    if (!(KNOWN_NAMES as readonly string[]).includes(name)) {
      problems.push(`${where}: unknown setting "${name}" (known: ${KNOWN_NAMES.join(", ")})`);
    }
  }

  const rotation = entry.rotation_type;
  if (rotation !== undefined) {
    if ((ROTATION_TYPES as readonly unknown[]).includes(rotation)) {
      settings.rotationType = rotation as RotationType;
    } else {
      problems.push(`${where}: "rotation_type" must be one of ${ROTATION_TYPES.join(", ")}`);
    }
  }

  const seconds = (name: string, min: number): number | undefined => {
    const value = entry[name];
    if (value === undefined) return undefined;
    if (!Number.isSafeInteger(value) || (value as number) < min) {
      problems.push(`${where}: "${name}" must be an integer number of seconds ≥ ${min}`);
      return undefined;
    }
    if ((value as number) > MAX_LIFETIME_SECONDS) {
      problems.push(
        `${where}: "${name}" must be at most ${MAX_LIFETIME_SECONDS} seconds (use the infinite_* settings for no limit)`,
      );
      return undefined;
    }
    return value as number;
  };
  settings.leewaySeconds = seconds("leeway", 0) ?? settings.leewaySeconds;
  settings.tokenLifetimeSeconds = seconds("token_lifetime", 1) ?? settings.tokenLifetimeSeconds;
  settings.idleTokenLifetimeSeconds =
    seconds("idle_token_lifetime", 1) ?? settings.idleTokenLifetimeSeconds;

  const flag = (name: string): boolean | undefined => {
    const value = entry[name];
    if (value === undefined) return undefined;
    if (typeof value !== "boolean") {
      problems.push(`${where}: "${name}" must be true or false`);
      return undefined;
    }
    return value;
  };
  settings.infiniteTokenLifetime =
    flag("infinite_token_lifetime") ?? settings.infiniteTokenLifetime;
  settings.infiniteIdleTokenLifetime =
    flag("infinite_idle_token_lifetime") ?? settings.infiniteIdleTokenLifetime;

  return { settings, problems };
}
