import type { OAuthError } from "../oauth/oauth-error.js";
import { noteError } from "../observability/access-record.js";
import { NO_STORE } from "../service/response-headers.js";
import type { HttpResponse } from "./http-types.js";

export function sendJson(
  res: HttpResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = NO_STORE,
): void {
  const payload = Buffer.from(JSON.stringify(body), "utf8");
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(payload.length),
    ...headers,
  });
  res.end(payload);
}

export function sendNoContent(res: HttpResponse): void {
  res.writeHead(204, NO_STORE);
  res.end();
}

/** 200 with an empty body (RFC 7009 §2.2: a revocation's answer carries nothing). */
export function sendEmptyOk(res: HttpResponse): void {
  res.writeHead(200, { ...NO_STORE, "content-length": "0" });
  res.end();
}

/** The REST renderer of OAuthError: `{error, error_description}` (RFC 6749 §5.2) and its headers. */
export function sendOAuthError(res: HttpResponse, error: OAuthError): void {
  noteError(res, error.error);
  const headers: Record<string, string> = { ...NO_STORE, ...error.headers };
  if (error.retryAfterSeconds !== undefined) {
    headers["retry-after"] = String(error.retryAfterSeconds);
  }
  sendJson(
    res,
    error.status,
    { error: error.error, error_description: error.description },
    headers,
  );
}
