import { performance } from "node:perf_hooks";
import { SpanKind } from "@opentelemetry/api";
import { ATTR_DB_OPERATION_NAME, ATTR_DB_SYSTEM_NAME } from "@opentelemetry/semantic-conventions";
import { StoreUnavailableError } from "../store/store.js";
import { methodNamesOf } from "../util/method-names.js";
import type { Metrics } from "./metrics.js";
import { endSpan, startChildSpan } from "./tracing.js";

type AsyncMethod = (...args: unknown[]) => Promise<unknown>;

/**
 * The same store with every round trip measured: each method (one atomic
 * step: one Lua script or command on Redis) observes the store duration
 * histogram, counts a failure by kind, and — tracing on, inside a request —
 * is a client span named `<component> <method>` (e.g. `store beginVerify`,
 * `session-store exchange`). Wrapped at the Store contract rather than in
 * ioredis, so the three backends are measured alike and the names are the
 * domain steps a verify is documented in (two per success). `close` is
 * passed through unmeasured.
 *
 * Written by hand: OpenTelemetry's ioredis instrumentation patches the
 * client (one span per command, script bodies in attributes) and knows
 * nothing of the memory store or the Prometheus histogram.
 */
export function instrumentStore<T extends object>(
  target: T,
  component: "store" | "session-store",
  metrics: Metrics,
  /** `db.system.name` of the spans ("redis"); undefined for the in-process store. */
  system?: string,
): T {
  const methods = target as unknown as Record<string, AsyncMethod>;
  const instrumented: Record<string, unknown> = {};
  for (const name of methodNamesOf(target)) {
    if (name === "close") {
      instrumented[name] = (...args: unknown[]) =>
        (methods[name] as AsyncMethod).apply(target, args);
      continue;
    }
    const spanName = `${component} ${name}`;
    const attributes = {
      [ATTR_DB_OPERATION_NAME]: name,
      ...(system !== undefined ? { [ATTR_DB_SYSTEM_NAME]: system } : {}),
    };
    instrumented[name] = async (...args: unknown[]) => {
      const span = startChildSpan(spanName, SpanKind.CLIENT, attributes);
      const start = performance.now();
      try {
        // Looked up per call: whoever replaces a method of the store (a test
        // simulating an outage) replaces it for the instrumented store too.
        const result = await (methods[name] as AsyncMethod).apply(target, args);
        metrics.observeStoreCall(name, (performance.now() - start) / 1000);
        if (span !== undefined) endSpan(span);
        return result;
      } catch (error) {
        const kind = error instanceof StoreUnavailableError ? "unavailable" : "error";
        metrics.observeStoreCall(name, (performance.now() - start) / 1000, kind);
        if (span !== undefined) endSpan(span, error);
        throw error;
      }
    };
  }
  return instrumented as T;
}
