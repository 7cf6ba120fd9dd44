import { type DiagLogger, DiagLogLevel, diag } from "@opentelemetry/api";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { Logger } from "./logger.js";
import { useTracer } from "./tracing.js";
import type { TracingConfig } from "./tracing-config.js";

export interface Tracing {
  /** Exports the spans still queued, then stops (call after the server has drained). */
  shutdown(): Promise<void>;
}

const OFF: Tracing = { shutdown: async () => {} };

/**
 * Starts OpenTelemetry's Node SDK when tracing is configured (an OTLP
 * endpoint is set): a tracer provider with the AsyncLocalStorage context
 * manager and the W3C Trace Context propagator, a batch span processor
 * (`OTEL_BSP_*`) and the OTLP/HTTP exporter of the configured protocol,
 * which reads the endpoint, headers, timeout and compression from the
 * `OTEL_EXPORTER_OTLP_*` variables itself. The SDK is imported only then:
 * with tracing off nothing of it is loaded, no context manager runs, and
 * the request path pays one check per span site (tracing.ts).
 *
 * The SDK's own warnings (e.g. an unreachable collector) go to the service
 * log as `event: "otel"` lines.
 */
export async function startTracing(config: TracingConfig, logger: Logger): Promise<Tracing> {
  if (!config.enabled) return OFF;
  const [sdk, resources, exporters] = await Promise.all([
    import("@opentelemetry/sdk-trace-node"),
    import("@opentelemetry/resources"),
    config.protocol === "http/json"
      ? import("@opentelemetry/exporter-trace-otlp-http")
      : import("@opentelemetry/exporter-trace-otlp-proto"),
  ]);
  diag.setLogger(diagLoggerOf(logger), DiagLogLevel.WARN);
  // Later merges win: the SDK's defaults, then ours, then OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME.
  const resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const provider = new sdk.NodeTracerProvider({
    resource,
    spanProcessors: [new sdk.BatchSpanProcessor(new exporters.OTLPTraceExporter())],
  });
  provider.register();
  useTracer(provider.getTracer("token-service"));
  logger.info(
    {
      event: "tracing_started",
      // The origin only: a URL may carry credentials.
      endpoint: config.endpoint === undefined ? undefined : new URL(config.endpoint).origin,
      protocol: config.protocol,
      service_name: config.serviceName,
    },
    "OpenTelemetry tracing on",
  );
  return {
    async shutdown() {
      useTracer(undefined);
      await provider.shutdown();
    },
  };
}

function diagLoggerOf(logger: Logger): DiagLogger {
  const line = (level: "warn" | "error") => (message: string) =>
    logger[level]({ event: "otel" }, message);
  const ignore = () => {};
  return {
    error: line("error"),
    warn: line("warn"),
    info: ignore,
    debug: ignore,
    verbose: ignore,
  };
}
