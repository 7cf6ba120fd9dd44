import {
  type Attributes,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { parseTraceParent } from "@opentelemetry/core";

/**
 * Spans through `@opentelemetry/api`, on only once the SDK has been started
 * (tracing-sdk.ts, when an OTLP endpoint is configured). Until then every
 * helper here costs one `undefined` check: no span object, no context
 * switch, no attribute record — the API's no-op tracer would still allocate
 * those per call. The tracer is process-wide state because OpenTelemetry's
 * tracer provider and context manager are (the API is global by design).
 */
let tracer: Tracer | undefined;

/** Turns spans on (the SDK's tracer) or off again (undefined). */
export function useTracer(next: Tracer | undefined): void {
  tracer = next;
}

/** The tracer while tracing is on. */
export function activeTracer(): Tracer | undefined {
  return tracer;
}

/**
 * A child span of the request being served, or undefined (tracing off, or
 * no recording request span in the active context: background work such as
 * health pings makes no root spans of its own).
 */
export function startChildSpan(
  name: string,
  kind: SpanKind,
  attributes?: Attributes,
): Span | undefined {
  if (tracer === undefined) return undefined;
  const parent = trace.getActiveSpan();
  if (parent === undefined || !parent.isRecording()) return undefined;
  return tracer.startSpan(name, { kind, ...(attributes !== undefined ? { attributes } : {}) });
}

/** Ends a span, marked as an error with the exception's type when `error` is given. */
export function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined) {
    // The type only: messages may quote input, and spans leave the process.
    const type = error instanceof Error ? error.name : typeof error;
    span.setAttribute("error.type", type);
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}

/** A synchronous step (e.g. signing) as a child span of the request. */
export function inSpan<T>(name: string, step: () => T): T {
  if (tracer === undefined) return step();
  const span = startChildSpan(name, SpanKind.INTERNAL);
  if (span === undefined) return step();
  try {
    const result = step();
    endSpan(span);
    return result;
  } catch (error) {
    endSpan(span, error);
    throw error;
  }
}

/** The trace id of a valid W3C `traceparent` header (Trace Context §3.2), else undefined. */
export function traceIdOf(header: string | string[] | undefined): string | undefined {
  if (typeof header !== "string") return undefined;
  return parseTraceParent(header)?.traceId;
}
