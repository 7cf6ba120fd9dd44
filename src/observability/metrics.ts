import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Surface } from "./access-record.js";

/**
 * Prometheus metrics (`GET /metrics`, docs/operations.md). Labels are closed sets — the
 * surface, the route or RPC method, the outcome (`ok`, the OAuth error code
 * or the RPC code), a store operation's name — never a client, user, token
 * or code.
 */
export interface Metrics {
  registry: Registry;
  recordRequest(surface: "rest" | "rpc", route: string, outcome: string): void;
  /** A request finished (every surface, measured from its first byte to the end of its response). */
  observeRequest(surface: Surface, route: string, outcome: string, seconds: number): void;
  /** One more (+1) or one fewer (-1) request being answered. */
  inFlight(surface: Surface, delta: 1 | -1): void;
  /** One store round trip; `failure` when it threw (unavailable: the store could not be reached). */
  observeStoreCall(
    operation: string,
    seconds: number,
    failure?: "unavailable" | "error" | undefined,
  ): void;
  /** How a code verification (mfa-otp or mfa-recovery-code grant) ended. */
  recordVerify(grant: string, outcome: string): void;
  /** A security event was recorded (a lockout refusal among them). */
  recordSecurityEvent(event: string): void;
}

/**
 * Request durations of a service whose answers take 0.1–50 ms (a verify is
 * about 0.1 ms of CPU and two store round trips); the tail up to 2.5 s shows
 * a store timing out (its commands settle within 2 s).
 */
const REQUEST_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];
/** One store round trip: tens of µs in memory, 0.1–1 ms to Redis on a LAN, 2 s at the client's timeout. */
const STORE_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const requests = new Counter({
    name: "token_service_requests_total",
    help: "Requests answered, by surface, route or RPC method, and outcome (ok or the OAuth error code).",
    labelNames: ["surface", "route", "outcome"] as const,
    registers,
  });
  const requestDuration = new Histogram({
    name: "token_service_request_duration_seconds",
    help: "Time from a request's arrival to the end of its response, by surface (rest, connect, grpc, grpc-web), route (REST route template or RPC method path; unmatched for any other path) and outcome (ok, the OAuth error code, the RPC code, http_<status> or aborted).",
    labelNames: ["surface", "route", "outcome"] as const,
    buckets: REQUEST_BUCKETS,
    registers,
  });
  const inFlight = new Gauge({
    name: "token_service_requests_in_flight",
    help: "Requests being answered now, by surface.",
    labelNames: ["surface"] as const,
    registers,
  });
  const storeDuration = new Histogram({
    name: "token_service_store_operation_duration_seconds",
    help: "One store round trip (one Store or SessionStore method: one Lua script or command on Redis), by operation.",
    labelNames: ["operation"] as const,
    buckets: STORE_BUCKETS,
    registers,
  });
  const storeErrors = new Counter({
    name: "token_service_store_errors_total",
    help: "Store round trips that failed, by operation and kind (unavailable: the store could not be reached or timed out; error: anything else).",
    labelNames: ["operation", "kind"] as const,
    registers,
  });
  const verifies = new Counter({
    name: "token_service_verify_outcomes_total",
    help: "Code verifications (token requests of the mfa-otp and mfa-recovery-code grants) by grant and outcome (ok, invalid_code, locked, expired_token, malformed_token, …).",
    labelNames: ["grant", "outcome"] as const,
    registers,
  });
  const securityEvents = new Counter({
    name: "token_service_security_events_total",
    help: "Security events recorded, by event.",
    labelNames: ["event"] as const,
    registers,
  });
  const lockouts = new Counter({
    name: "token_service_lockouts_total",
    help: "Code verifications refused because the user's failure bucket was empty (too_many_attempts).",
    registers,
  });
  return {
    registry,
    recordRequest: (surface, route, outcome) => requests.inc({ surface, route, outcome }),
    observeRequest: (surface, route, outcome, seconds) =>
      requestDuration.observe({ surface, route, outcome }, seconds),
    inFlight: (surface, delta) => inFlight.inc({ surface }, delta),
    observeStoreCall(operation, seconds, failure) {
      storeDuration.observe({ operation }, seconds);
      if (failure !== undefined) storeErrors.inc({ operation, kind: failure });
    },
    recordVerify: (grant, outcome) => verifies.inc({ grant, outcome }),
    recordSecurityEvent(event) {
      securityEvents.inc({ event });
      if (event === "user_locked_out") lockouts.inc();
    },
  };
}
