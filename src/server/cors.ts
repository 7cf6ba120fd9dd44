import { cors as connectCors } from "@connectrpc/connect";
import type { ClientRegistry, RegisteredClient } from "../oauth/client-registry.js";
import type { HttpRequest, HttpResponse } from "./http-types.js";

/**
 * Auth0's browser SDK (auth0-spa-js, through auth0-auth-js) sends its name and
 * version as `Auth0-Client` on every call and offers no way to stop it: without
 * it in the preflight's allow list no SPA on its own origin can call (SPEC §2).
 */
const AUTH0_CLIENT = "auth0-client";
/** Headers browsers may send besides Connect's and gRPC-Web's own. */
const EXTRA_ALLOWED_HEADERS = [
  "authorization",
  "dpop",
  "x-request-id",
  "traceparent",
  AUTH0_CLIENT,
];
/**
 * Headers browser scripts may read besides Connect's and gRPC-Web's own.
 * `Auth0-Client` too, as SPEC §2 lists it with the exposed ones (the service
 * never sends it; a proxy in front may).
 */
const EXTRA_EXPOSED_HEADERS = [
  "dpop-nonce",
  "www-authenticate",
  "retry-after",
  "x-request-id",
  AUTH0_CLIENT,
];
const ALLOWED_METHODS = ["GET", "POST", "DELETE"];
/** How long a browser may cache a preflight answer (seconds). */
const PREFLIGHT_MAX_AGE = "7200";

const ALLOW_HEADERS = [...connectCors.allowedHeaders, ...EXTRA_ALLOWED_HEADERS].join(", ");
const EXPOSE_HEADERS = [...connectCors.exposedHeaders, ...EXTRA_EXPOSED_HEADERS].join(", ");

/**
 * CORS (the Fetch standard's CORS protocol) for browser clients. An origin is
 * allowed when a registered client lists it exactly (`allowed_origins`,
 * Auth0's name): a preflight to a path browsers may call is answered 204 with
 * the Access-Control-Allow-* headers when some client lists its origin, 403
 * otherwise; an actual request is given `Access-Control-Allow-Origin` only
 * when the authenticated client lists the origin (routes with client
 * authentication) or some client does (the others). No credentials mode:
 * every call carries its credential in a header or the body, never a cookie.
 */
export interface Cors {
  /** Whether this request is a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`). */
  isPreflight(req: HttpRequest): boolean;
  /** Answers a preflight: 204 with the allow headers, or 403. */
  answerPreflight(req: HttpRequest, res: HttpResponse): void;
  /** Allows the request's origin when some client lists it (routes without client authentication). */
  allowIfAnyClient(req: HttpRequest, res: HttpResponse): void;
  /** The response headers that allow the origin for this authenticated client, if it lists it. */
  headersForClient(origin: string | undefined, client: RegisteredClient): Record<string, string>;
}

export function createCors(clients: () => ClientRegistry): Cors {
  let registry: ClientRegistry | undefined;
  let anyClient = new Set<string>();
  /** The union of every client's origins, recomputed when the registry is replaced (reload). */
  const allOrigins = () => {
    const current = clients();
    if (current !== registry) {
      registry = current;
      anyClient = new Set([...current.values()].flatMap((c) => c.allowedOrigins));
    }
    return anyClient;
  };
  const allowHeaders = (origin: string): Record<string, string> => ({
    "access-control-allow-origin": origin,
    "access-control-expose-headers": EXPOSE_HEADERS,
    vary: "Origin",
  });
  const originOf = (req: HttpRequest): string | undefined => {
    const origin = req.headers.origin;
    return typeof origin === "string" && origin !== "" ? origin : undefined;
  };

  return {
    isPreflight: (req) =>
      req.method === "OPTIONS" &&
      originOf(req) !== undefined &&
      req.headers["access-control-request-method"] !== undefined,

    answerPreflight(req, res) {
      req.resume();
      const origin = originOf(req);
      if (origin === undefined || !allOrigins().has(origin)) {
        res.writeHead(403, { vary: "Origin", "content-length": "0" });
        res.end();
        return;
      }
      res.writeHead(204, {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": ALLOWED_METHODS.join(", "),
        "access-control-allow-headers": ALLOW_HEADERS,
        "access-control-max-age": PREFLIGHT_MAX_AGE,
        vary: "Origin",
      });
      res.end();
    },

    allowIfAnyClient(req, res) {
      const origin = originOf(req);
      if (origin === undefined || !allOrigins().has(origin)) return;
      for (const [name, value] of Object.entries(allowHeaders(origin))) res.setHeader(name, value);
    },

    headersForClient(origin, client) {
      if (origin === undefined || origin === "" || !client.allowedOrigins.includes(origin)) {
        return {};
      }
      return allowHeaders(origin);
    },
  };
}
