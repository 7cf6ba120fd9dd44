/**
 * Deletes expired rows in the background (docs/operations.md "PostgreSQL").
 *
 * Reads already treat an expired row as absent; this only gives the space
 * back. Every instance runs it: each round deletes, table by table, batches
 * of at most `batchSize` rows (ts_sweep: `DELETE … WHERE ctid = ANY (SELECT …
 * LIMIT n FOR UPDATE SKIP LOCKED)`), one short transaction per batch that
 * never waits for a row another instance or a request holds. A round stops a
 * table after `maxBatches` full batches (the next round goes on), so a
 * backlog is worked off in small steps and no lock is ever held long.
 *
 * Rows are deleted `graceMs` after their expiry: an instance whose clock runs
 * ahead of the others by less than that never deletes a row they still read
 * as live (a consumed mfa_token's mark, a DPoP jti).
 */
import type { Logger } from "../observability/logger.js";
import type { Clock } from "../util/clock.js";
import type { Database } from "./postgres-client.js";
import { SWEEP } from "./postgres-statements.js";

/** The tables with an expiry, as ts_sweep names them. */
export const SWEPT_TABLES = [
  "consumed_mfa_tokens",
  "single_use_values",
  "user_failure_buckets",
  "address_failure_buckets",
  "refresh_token_families",
  "authenticators",
] as const;

export interface SweeperOptions {
  clock: Clock;
  logger?: Logger;
  /** Time between rounds (default 60 s; the first round comes after a random part of it). */
  intervalMs?: number;
  /** Rows per statement (default 1,000). */
  batchSize?: number;
  /** Full batches per table and round (default 100: 100,000 rows a minute per table and instance). */
  maxBatches?: number;
  /** How long after its expiry a row is deleted (default 60 s). */
  graceMs?: number;
}

export interface Sweeper {
  /** One round now: the rows deleted per table. */
  sweepOnce(): Promise<Record<string, number>>;
  stop(): void;
}

export function createSweeper(db: Database, options: SweeperOptions): Sweeper {
  const intervalMs = options.intervalMs ?? 60_000;
  const batchSize = options.batchSize ?? 1_000;
  const maxBatches = options.maxBatches ?? 100;
  const graceMs = options.graceMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const sweepOnce = async (): Promise<Record<string, number>> => {
    const before = Math.floor(options.clock.nowMs()) - graceMs;
    const deleted: Record<string, number> = {};
    for (const table of SWEPT_TABLES) {
      deleted[table] = 0;
      for (let batch = 0; batch < maxBatches && !stopped; batch++) {
        const [row] = await db.query<{ deleted: number }>(SWEEP, [table, before, batchSize]);
        const count = row?.deleted ?? 0;
        deleted[table] += count;
        if (count < batchSize) break;
      }
    }
    return deleted;
  };

  const schedule = (delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      sweepOnce()
        .then(
          (deleted) => {
            const total = Object.values(deleted).reduce((a, b) => a + b, 0);
            if (total > 0) options.logger?.debug({ event: "expired_rows_deleted", ...deleted });
          },
          // The database is unreachable: readiness says so; the next round tries again.
          (error: unknown) =>
            options.logger?.debug({ event: "expiry_sweep_failed", message: String(error) }),
        )
        .finally(() => schedule(intervalMs));
    }, delayMs);
    timer.unref();
  };
  // Instances started together spread their rounds over the interval.
  schedule(Math.floor(Math.random() * intervalMs));

  return {
    sweepOnce,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
