import type { Logger } from "./logger.js";

/** What happened to whom; never a secret (no code, token, secret or proof). */
export interface SecurityEventFields {
  /** Absent when the event names no user (e.g. a refused internal API key). */
  userId?: string;
  clientId?: string;
  authenticatorId?: string;
  /** A short outcome word, e.g. "created", "activated", "deleted", "locked". */
  outcome?: string;
  /** Extra context that is not secret (e.g. seconds until retry). */
  [extra: string]: string | number | undefined;
}

export type SecurityEventName =
  | "authenticator_enrolled"
  /** An Associate replaced a live pending enrollment (logged beside `authenticator_enrolled`). */
  | "authenticator_replaced"
  | "authenticator_activated"
  | "authenticator_deleted"
  /** A wrong code (user, client, address id). */
  | "otp_failed"
  /** A right code for a time step already used (RFC 6238 §5.2). */
  | "otp_replayed"
  | "recovery_code_used"
  | "user_locked_out"
  | "address_locked_out"
  | "refresh_token_reuse_detected"
  /** Every session of a user ended (field `count`, `reason`). */
  | "sessions_revoked"
  | "internal_key_refused"
  | "user_mfa_reset"
  | "user_unlocked"
  | "user_data_deleted";

/**
 * Security events: changes to a user's factors and sessions, lockouts and
 * token reuse, each one structured log line with `event` set, so an
 * operator can query them (`event=user_locked_out`) apart from the access log.
 */
export interface SecurityEvents {
  record(event: SecurityEventName, fields: SecurityEventFields): void;
}

export function createSecurityEvents(logger: Logger): SecurityEvents {
  return {
    record(event, fields) {
      const { userId, clientId, authenticatorId, outcome, ...extra } = fields;
      logger.info(
        {
          event,
          security: true,
          ...(userId !== undefined ? { user_id: userId } : {}),
          ...(clientId !== undefined ? { client_id: clientId } : {}),
          ...(authenticatorId !== undefined ? { authenticator_id: authenticatorId } : {}),
          outcome: outcome ?? "ok",
          ...extra,
        },
        event.replaceAll("_", " "),
      );
    },
  };
}
