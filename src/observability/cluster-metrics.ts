import cluster from "node:cluster";
import { AggregatorRegistry, type Registry } from "prom-client";
import type { MetricsText } from "./metrics-cache.js";
import type { Readiness } from "./store-health.js";

/**
 * Metrics and readiness with WORKERS > 1 (SPEC §6: one scrape answers the sum
 * over all workers). Each worker keeps its own registry; the primary collects
 * them with prom-client's AggregatorRegistry (counters and histograms summed,
 * each metric by its own aggregator) and serves the management listener. A
 * scrape of the public port (PUBLIC_METRICS=true) lands on one worker, which
 * asks the primary for the same sum. Readiness: every worker reports its own
 * (the store's ping) to the primary on each change.
 */

const READINESS = "token-service:readiness";
const SCRAPE_REQUEST = "token-service:scrape-request";
const SCRAPE_ANSWER = "token-service:scrape-answer";
/** A worker's relayed scrape fails after this long (prom-client's own timeout is 5 s). */
const RELAY_TIMEOUT_MS = 6_000;

interface Message {
  type?: unknown;
  id?: unknown;
  ready?: unknown;
  text?: unknown;
  error?: unknown;
}

/** Primary: the sum of every worker's registry, in the registry's shape (for createCachedMetrics). */
export function createClusterMetrics(): Pick<Registry, "metrics" | "contentType"> {
  const aggregator = new AggregatorRegistry();
  return {
    metrics: () => aggregator.clusterMetrics(),
    contentType: aggregator.contentType,
  } as Pick<Registry, "metrics" | "contentType">;
}

/** Primary: answers the scrapes workers relay from the public port with `metrics`. */
export function answerRelayedScrapes(metrics: () => Promise<MetricsText>): void {
  cluster.on("message", (worker, message: Message) => {
    if (message?.type !== SCRAPE_REQUEST) return;
    metrics().then(
      (text) =>
        worker.isConnected() &&
        worker.send({ type: SCRAPE_ANSWER, id: message.id, text: text.body.toString("utf8") }),
      (error: unknown) =>
        worker.isConnected() &&
        worker.send({ type: SCRAPE_ANSWER, id: message.id, error: String(error) }),
    );
  });
}

/**
 * Worker: lets the primary read `registry` (prom-client answers its requests
 * once an AggregatorRegistry exists in the process), and returns what the
 * public port's /metrics serves: the primary's sum.
 */
export function shareMetricsWithPrimary(registry: Registry): () => Promise<MetricsText> {
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  let next = 0;
  const pending = new Map<number, (message: Message) => void>();
  process.on("message", (message: Message) => {
    if (message?.type !== SCRAPE_ANSWER || typeof message.id !== "number") return;
    pending.get(message.id)?.(message);
  });
  return () =>
    new Promise((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error("the primary did not answer the scrape"));
      }, RELAY_TIMEOUT_MS);
      pending.set(id, (message) => {
        pending.delete(id);
        clearTimeout(timer);
        if (typeof message.text === "string") {
          resolve({ contentType: registry.contentType, body: Buffer.from(message.text, "utf8") });
        } else reject(new Error(String(message.error)));
      });
      process.send?.({ type: SCRAPE_REQUEST, id });
    });
}

/** Worker: tells the primary this worker's readiness now and on every change. */
export function reportReadinessToPrimary(readiness: Readiness): void {
  const send = (ready: boolean) => {
    if (process.connected) process.send?.({ type: READINESS, ready });
  };
  send(readiness.ready);
  readiness.onChange(send);
}

/**
 * Primary: ready while every worker alive has said it is ready (a worker that
 * has not reported yet, or is being replaced, is not), and `stop()` not called.
 */
export function createWorkersReadiness(): Readiness & { stop(): void } {
  const byWorker = new Map<number, boolean>();
  const listeners = new Set<(ready: boolean) => void>();
  let stopped = false;
  let last = false;
  const compute = () =>
    !stopped &&
    Object.values(cluster.workers ?? {}).length > 0 &&
    Object.values(cluster.workers ?? {}).every(
      (w) => w !== undefined && byWorker.get(w.id) === true,
    );
  const update = () => {
    const now = compute();
    if (now === last) return;
    last = now;
    for (const listener of listeners) listener(now);
  };
  cluster.on("message", (worker, message: Message) => {
    if (message?.type !== READINESS || typeof message.ready !== "boolean") return;
    byWorker.set(worker.id, message.ready);
    update();
  });
  cluster.on("fork", update);
  cluster.on("exit", (worker) => {
    byWorker.delete(worker.id);
    update();
  });
  return {
    get ready() {
      return compute();
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop() {
      stopped = true;
      update();
    },
  };
}
