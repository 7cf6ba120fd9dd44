/**
 * A tiny OTLP/HTTP trace receiver (a collector's `/v1/traces`) on a loopback
 * port, for tests: it keeps every export request and, for the JSON protocol
 * (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`), the spans decoded from it.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

/** One span as OTLP/JSON carries it (ids as hex strings). */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, unknown>;
  status?: { code?: number };
  /** The resource's attributes (service.name, …). */
  resource: Record<string, unknown>;
}

export interface ExportRequest {
  path: string;
  contentType: string;
  body: Buffer;
}

export interface OtlpReceiver {
  /** e.g. http://127.0.0.1:43123 (OTEL_EXPORTER_OTLP_ENDPOINT: the exporter adds /v1/traces). */
  endpoint: string;
  requests: ExportRequest[];
  spans(): ReceivedSpan[];
  /** Resolves once `match` accepts the spans received so far; rejects after `timeoutMs`. */
  waitFor(match: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}

function attributesOf(list: OtlpAttribute[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) {
    out[key] =
      value.stringValue ??
      (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
      value.boolValue ??
      value.doubleValue;
  }
  return out;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const requests: ExportRequest[] = [];
  const spans: ReceivedSpan[] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const contentType = String(req.headers["content-type"] ?? "");
      requests.push({ path: req.url ?? "", contentType, body });
      if (contentType.startsWith("application/json")) {
        const parsed = JSON.parse(body.toString("utf8")) as {
          resourceSpans?: Array<{
            resource?: { attributes?: OtlpAttribute[] };
            scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }>;
          }>;
        };
        for (const resourceSpans of parsed.resourceSpans ?? []) {
          const resource = attributesOf(resourceSpans.resource?.attributes);
          for (const scope of resourceSpans.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) {
              spans.push({
                traceId: String(span.traceId),
                spanId: String(span.spanId),
                ...(span.parentSpanId ? { parentSpanId: String(span.parentSpanId) } : {}),
                name: String(span.name),
                kind: Number(span.kind),
                attributes: attributesOf(span.attributes as OtlpAttribute[]),
                status: span.status as { code?: number },
                resource,
              });
            }
          }
        }
      }
      res.writeHead(200, { "content-type": contentType || "application/json" });
      res.end(contentType.startsWith("application/json") ? "{}" : "");
      for (const wake of waiters) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    spans: () => spans,
    waitFor: (match, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (!match(spans)) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(spans);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`spans not received in ${timeoutMs} ms; got ${spans.length} spans`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
