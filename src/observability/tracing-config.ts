/**
 * Tracing's part of the configuration, read by the one loader (config.ts)
 * from OpenTelemetry's standard variables (the SDK environment variable
 * specification), so an operator sets what every other OpenTelemetry
 * service takes:
 * - on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
 *   `OTEL_EXPORTER_OTLP_ENDPOINT` is set, unless `OTEL_SDK_DISABLED=true` or
 *   `OTEL_TRACES_EXPORTER=none` (the only exporter is `otlp`);
 * - `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`:
 *   `http/protobuf` (the specification's default) or `http/json`; `grpc` is
 *   refused (no gRPC exporter is shipped: it would pull in `@grpc/grpc-js`);
 * - `OTEL_SERVICE_NAME` (default `token-service`).
 * The exporter itself reads the endpoint, `…_HEADERS`, `…_TIMEOUT` and
 * `…_COMPRESSION`; the SDK reads `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*`,
 * `OTEL_RESOURCE_ATTRIBUTES` and the span limits (tracing-sdk.ts).
 */
export interface TracingConfig {
  enabled: boolean;
  /** Where spans go (the traces endpoint as given, or the base endpoint); for start-up messages. */
  endpoint: string | undefined;
  protocol: "http/protobuf" | "http/json";
  /** `OTEL_SERVICE_NAME`, else `OTEL_RESOURCE_ATTRIBUTES`' service.name, else `token-service`. */
  serviceName: string;
}

export const DEFAULT_SERVICE_NAME = "token-service";
const PROTOCOLS = ["http/protobuf", "http/json"] as const;

export function parseTracingConfig(
  value: (name: string) => string | undefined,
  problems: string[],
): TracingConfig {
  const tracesEndpoint = value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const endpoint = tracesEndpoint ?? value("OTEL_EXPORTER_OTLP_ENDPOINT");
  if (endpoint !== undefined && !/^https?:\/\/[^\s]+$/i.test(endpoint)) {
    const name = tracesEndpoint !== undefined ? "_TRACES" : "";
    problems.push(`OTEL_EXPORTER_OTLP${name}_ENDPOINT must be an http:// or https:// URL`);
  }
  const exporter = (value("OTEL_TRACES_EXPORTER") ?? "otlp").toLowerCase();
  if (exporter !== "otlp" && exporter !== "none") {
    problems.push(`OTEL_TRACES_EXPORTER must be otlp or none (got "${exporter}")`);
  }
  const protocol = (
    value("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ??
    value("OTEL_EXPORTER_OTLP_PROTOCOL") ??
    "http/protobuf"
  ).toLowerCase();
  const known = (PROTOCOLS as readonly string[]).includes(protocol);
  if (!known) {
    problems.push(
      `OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or http/json (got "${protocol}"; OTLP over gRPC is not supported: point the endpoint at the collector's OTLP/HTTP port, 4318 by default)`,
    );
  }
  const disabled = (value("OTEL_SDK_DISABLED") ?? "false").toLowerCase() === "true";
  return {
    enabled: endpoint !== undefined && !disabled && exporter === "otlp",
    endpoint,
    protocol: known ? (protocol as TracingConfig["protocol"]) : "http/protobuf",
    serviceName:
      value("OTEL_SERVICE_NAME") ??
      serviceNameOf(value("OTEL_RESOURCE_ATTRIBUTES")) ??
      DEFAULT_SERVICE_NAME,
  };
}

/** `service.name` in `OTEL_RESOURCE_ATTRIBUTES` (`key=value,…`, values percent-encoded). */
function serviceNameOf(attributes: string | undefined): string | undefined {
  for (const pair of attributes?.split(",") ?? []) {
    const [key, raw] = pair.split("=", 2).map((part) => part.trim());
    if (key !== "service.name" || raw === undefined || raw === "") continue;
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return undefined;
}
