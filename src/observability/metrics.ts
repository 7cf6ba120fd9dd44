import { Counter, collectDefaultMetrics, Registry } from "prom-client";

/**
 * Prometheus metrics (docs/api.md `GET /metrics`). Labels are closed sets — the
 * surface, the route or RPC method, and the outcome (`ok` or the OAuth error
 * code) — never a client, user, token or code.
 */
export interface Metrics {
  registry: Registry;
  recordRequest(surface: "rest" | "rpc", route: string, outcome: string): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: "token_service_requests_total",
    help: "Requests answered, by surface, route or RPC method, and outcome (ok or the OAuth error code).",
    labelNames: ["surface", "route", "outcome"] as const,
    registers: [registry],
  });
  return {
    registry,
    recordRequest: (surface, route, outcome) => requests.inc({ surface, route, outcome }),
  };
}
