/**
 * The statements the PostgreSQL stores send, one per store method (one
 * round trip each), grouped by artefact. The steps that check and change
 * state are functions of the schema (migrations/*.sql), so each is one
 * statement that runs as one transaction.
 */
import { createHash } from "node:crypto";
import type { Statement } from "./postgres-client.js";

const statement = (name: string, text: string): Statement => ({ name, text });

// ---------------------------------------------------------------- code verification

export const BEGIN_VERIFY = statement(
  "ts_begin_verify",
  "SELECT * FROM ts_begin_verify($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
);

export const COMMIT_OTP = statement(
  "ts_commit_otp",
  "SELECT ts_commit_otp($1, $2, $3, $4, $5, $6, $7, $8, $9) AS outcome",
);

export const REDEEM_RECOVERY_CODE = statement(
  "ts_redeem_recovery_code",
  "SELECT * FROM ts_redeem_recovery_code($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
);

// ---------------------------------------------------------------- authenticators and recovery codes

/** An expired pending authenticator reads as absent ($2: now). */
export const GET_AUTHENTICATOR = statement(
  "ts_get_authenticator",
  `SELECT id, secret, active, last_step FROM authenticators
   WHERE user_id = $1 AND (expires_at IS NULL OR expires_at > $2)`,
);

/** One row: the authenticator's columns (NULL when none) and whether a recovery code is stored. */
export const GET_FACTORS = statement(
  "ts_get_factors",
  `SELECT a.id, a.secret, a.active, a.last_step,
          EXISTS (SELECT 1 FROM recovery_codes r WHERE r.user_id = $1) AS has_recovery_code
   FROM (SELECT 1) AS one LEFT JOIN authenticators a
     ON a.user_id = $1 AND (a.expires_at IS NULL OR a.expires_at > $2)`,
);

export const ASSOCIATE_PENDING = statement(
  "ts_associate_pending",
  "SELECT * FROM ts_associate_pending($1, $2, $3, $4, $5, $6)",
);

export const DELETE_AUTHENTICATOR = statement(
  "ts_delete_authenticator",
  "SELECT ts_delete_authenticator($1, $2, $3) AS deleted",
);

// ---------------------------------------------------------------- the administrator's steps (0004-admin.sql)

export const RESET_USER_FACTORS = statement(
  "ts_reset_user_factors",
  "SELECT ts_reset_user_factors($1) AS removed",
);

export const UNLOCK_USER = statement("ts_unlock_user", "SELECT ts_unlock_user($1)");

export const ERASE_USER = statement("ts_erase_user", "SELECT ts_erase_user($1, $2) AS more");

/**
 * A refused internal API key: one attempt taken from the address's bucket
 * unless it is empty (then its wait, nothing taken), in one statement.
 */
export const TAKE_ADDRESS_ATTEMPT = statement(
  "ts_take_address_attempt",
  `SELECT CASE WHEN ts_address_take($1, $2, $3, $4) IS NULL
               THEN ts_address_wait($1, $2, $3, $4) ELSE 0 END AS wait`,
);

export const ADDRESS_WAIT = statement(
  "ts_address_wait",
  "SELECT ts_address_wait($1, $2, $3, $4) AS wait",
);

// ---------------------------------------------------------------- mfa_token marks

export const IS_MFA_TOKEN_CONSUMED = statement(
  "ts_is_mfa_token_consumed",
  `SELECT EXISTS (SELECT 1 FROM consumed_mfa_tokens
                  WHERE user_id = $1 AND token_id = $2 AND expires_at > $3) AS consumed`,
);

// ---------------------------------------------------------------- single-use values

export const FIRST_USE = statement("ts_first_use", "SELECT ts_first_use($1, $2, $3) AS first");

/**
 * The key of a single-use value: SHA-256 of the scope and the value, so a
 * caller's `jti` of any length makes a row of fixed size and scopes never
 * collide (the scope's length comes first).
 */
export function singleUseKey(scope: string, value: string): Buffer {
  return createHash("sha256").update(`${scope.length}:${scope}:${value}`, "utf8").digest();
}

// ---------------------------------------------------------------- sessions

export const CREATE_FAMILY = statement(
  "ts_create_family",
  "SELECT ts_create_family($1, $2, $3, $4, $5, $6, $7) AS revoked",
);

export const EXCHANGE = statement(
  "ts_exchange",
  "SELECT ts_exchange($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) AS outcome",
);

export const REVOKE_FAMILY = statement(
  "ts_revoke_family",
  "SELECT ts_revoke_family($1, $2, $3) AS revoked",
);

export const REVOKE_USER_FAMILIES = statement(
  "ts_revoke_user_families",
  "SELECT * FROM ts_revoke_user_families($1, $2, $3)",
);

export const DROP_REVOKED_FAMILIES = statement(
  "ts_drop_revoked_families",
  "SELECT ts_drop_revoked_families($1, $2) AS deleted",
);

// ---------------------------------------------------------------- health and expiry

export const PING = statement("ts_ping", "SELECT 1 AS ok");

export const SWEEP = statement("ts_sweep", "SELECT ts_sweep($1, $2, $3) AS deleted");

/** The applied schema version (postgres-migrations.ts; fails with 42P01 on an empty schema). */
export const SCHEMA_VERSION = statement(
  "ts_schema_version",
  "SELECT max(version) AS version FROM schema_migrations",
);
