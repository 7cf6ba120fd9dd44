import type { Registry } from "prom-client";

export interface MetricsText {
  contentType: string;
  body: Buffer;
}

/**
 * The registry's Prometheus text, rendered at most once per `ttlMs` (default
 * 1 s, finer than any scrape interval). Rendering collects every metric
 * (process, GC, event loop lag) and costs milliseconds; without the cache a
 * flood of scrapes (3,000 pipelined GET /metrics) stalled every other request
 * for seconds. Concurrent scrapes share one rendering.
 */
export function createCachedMetrics(
  registry: Pick<Registry, "metrics" | "contentType">,
  ttlMs = 1_000,
): () => Promise<MetricsText> {
  let cached: { at: number; text: Promise<MetricsText> } | undefined;
  return () => {
    const now = performance.now();
    if (cached === undefined || now - cached.at >= ttlMs) {
      const text = registry.metrics().then((metrics) => ({
        contentType: registry.contentType,
        body: Buffer.from(metrics, "utf8"),
      }));
      // A failed rendering is not cached: the next scrape tries again.
      text.catch(() => {
        if (cached?.text === text) cached = undefined;
      });
      cached = { at: now, text };
    }
    return cached.text;
  };
}
