import { randomBytes } from "node:crypto";
import type { Config } from "../config.js";
import type { RegisteredClient } from "../oauth/client-registry.js";
import { DEMO_CLIENT_SECRET } from "../oauth/demo-client.js";
import { oauthErrors } from "../oauth/oauth-error.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import { createRouteGuard } from "../server/guarded-route.js";
import type { HttpRequest, HttpResponse } from "../server/http-types.js";
import { type Params, parseParams } from "../server/parse-params.js";
import { readBody } from "../server/read-body.js";
import { sendJson } from "../server/rest-response.js";
import type { RestMatch, RestRoutes } from "../server/rest-routes.js";
import { mfaApiAudience } from "../service/mfa-api-caller.js";
import { NO_STORE } from "../service/response-headers.js";
import type { Services } from "../service/services.js";
import type { Clock } from "../util/clock.js";
import { demoPageCsp, renderDemoPage } from "./demo-page.js";
import { createDemoSessions } from "./demo-session.js";
import { otpauthQrSvgDataUrl } from "./qr-code.js";

export interface DemoRoutesDeps {
  config: Config;
  services: Services;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
}

/** What a demo login asks for: tokens for the app (with an ID token), or the MFA API. */
const PURPOSES = {
  login: { audience: "", scope: "openid profile" },
  "mfa-api": { audience: undefined, scope: "read:authenticators remove:authenticators" },
} as const;
type Purpose = keyof typeof PURPOSES;

/** The longest `otpauth://` URI /demo/qr renders (Associate's are about 150 characters). */
const MAX_QR_URI = 1024;

type Handler = (req: HttpRequest, res: HttpResponse) => Promise<void>;

/**
 * Adds the demo page and its two JSON endpoints in front of the REST routes,
 * when `DEMO` is on (config.ts; never in production):
 *
 * - `GET /demo`: the page (demo-page.ts);
 * - `POST /demo/login` `{purpose, session?}`: an mfa_token for a new demo
 *   user, or for the session's user (demo-session.ts), minted in-process by
 *   the same `issueMfaToken` as the internal RPC, so the internal API key
 *   stays on the server;
 * - `POST /demo/qr` `{barcode_uri}`: the QR code of an `otpauth://` URI as an
 *   SVG data URL.
 *
 * They check no secret of their own: codes and recovery codes go to the real
 * `/oauth/token`, so the user's failure bucket limits guesses as for any
 * user. Bodies must be JSON (a cross-site form post cannot send it without a
 * CORS preflight, which /demo does not answer); errors are OAuth JSON; the
 * routes log nothing a request carries.
 */
export function withDemoRoutes(rest: RestRoutes, deps: DemoRoutesDeps): RestRoutes {
  if (!deps.config.demo) return rest;
  const client = demoClientOf(deps.config.clients.values());
  if (client === undefined) return rest;
  const demo = createDemoRoutes(client, deps);
  return {
    match: (method, path) => demo(method, path) ?? rest.match(method, path),
    // The demo's paths are fixed: each is its own route template (access log, metrics).
    routeOf: (path) =>
      demo("GET", path) !== undefined || demo("POST", path) !== undefined
        ? path
        : rest.routeOf(path),
  };
}

function createDemoRoutes(
  client: RegisteredClient & { authMethod: "client_secret_post" | "client_secret_basic" },
  deps: DemoRoutesDeps,
): (method: string, path: string) => RestMatch {
  const { config, services } = deps;
  const sessions = createDemoSessions(config.secretsKey, deps.clock);

  const guarded = createRouteGuard(deps);

  const getPage = guarded("/demo", async (_req, res) => {
    const nonce = randomBytes(16).toString("base64");
    const html = Buffer.from(
      renderDemoPage({
        clientId: client.clientId,
        clientSecret: DEMO_CLIENT_SECRET,
        authMethod: client.authMethod,
        issuerName: config.issuerName,
        nonce,
      }),
      "utf8",
    );
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-length": String(html.length),
      "content-security-policy": demoPageCsp(nonce),
      "x-content-type-options": "nosniff",
      "x-frame-options": "DENY",
      "referrer-policy": "no-referrer",
      ...NO_STORE,
    });
    res.end(html);
  });

  const postLogin = guarded("/demo/login", async (req, res) => {
    const params = await readJson(req, res);
    const purpose = purposeOf(params.purpose);
    let userId: string;
    let session: string;
    if (params.session === undefined && purpose === "login") {
      ({ userId, session } = sessions.start());
    } else {
      userId = sessions.userOf(params.session);
      session = params.session as string;
    }
    const target = PURPOSES[purpose];
    const audience = target.audience ?? mfaApiAudience(config.issuerUrl);
    const issued = await services.issueMfaToken({
      apiKey: config.internalApiKey,
      userId,
      clientId: client.clientId,
      audience,
      scope: target.scope,
      // Shown in the authenticator app: "<ISSUER_NAME>:demo-xxxxxx".
      userLabel: userId.slice(0, 11),
    });
    sendJson(res, 200, {
      mfa_token: issued.mfaToken,
      expires_in: issued.expiresIn,
      // Auth0's mfa_required body names what the user must do next.
      mfa_requirements: { [issued.requirement]: [{ type: "otp" }] },
      user_id: userId,
      audience,
      scope: target.scope,
      session,
    });
  });

  const postQr = guarded("/demo/qr", async (req, res) => {
    const uri = (await readJson(req, res)).barcode_uri;
    if (uri === undefined || uri === null) {
      throw oauthErrors.invalidRequest.missingParameter("barcode_uri");
    }
    if (typeof uri !== "string") throw oauthErrors.invalidRequest.notAString("barcode_uri");
    if (uri.length > MAX_QR_URI)
      throw oauthErrors.invalidRequest.tooLong("barcode_uri", MAX_QR_URI);
    if (!uri.startsWith("otpauth://totp/")) {
      throw oauthErrors.invalidRequest.unsupportedValue(
        "barcode_uri must be an otpauth://totp/ URI",
      );
    }
    sendJson(res, 200, { image: await otpauthQrSvgDataUrl(uri) });
  });

  const table: Record<string, Record<string, Handler>> = {
    "/demo": { GET: getPage },
    "/demo/login": { POST: postLogin },
    "/demo/qr": { POST: postQr },
  };
  return (method, path) => {
    const routes = table[path];
    if (routes === undefined) return undefined;
    const handler = routes[method] ?? (method === "HEAD" ? routes.GET : undefined);
    if (handler !== undefined) return handler;
    const allow = Object.keys(routes);
    return { allow: routes.GET !== undefined ? [...allow, "HEAD"] : allow };
  };
}

/** The client the page logs in as: the one holding the demo client's public secret. */
function demoClientOf(
  clients: Iterable<RegisteredClient>,
): (RegisteredClient & { authMethod: "client_secret_post" | "client_secret_basic" }) | undefined {
  for (const client of clients) {
    if (
      client.clientSecret === DEMO_CLIENT_SECRET &&
      (client.authMethod === "client_secret_post" || client.authMethod === "client_secret_basic")
    ) {
      return client as RegisteredClient & {
        authMethod: "client_secret_post" | "client_secret_basic";
      };
    }
  }
  return undefined;
}

/** A JSON object body; anything else is row 14 (415 for another content type). */
async function readJson(req: HttpRequest, res: HttpResponse): Promise<Params> {
  const body = await readBody(req, res);
  const mediaType = (req.headers["content-type"] ?? "").split(";", 1)[0]?.trim().toLowerCase();
  if (mediaType !== "application/json") {
    throw oauthErrors.invalidRequest.body(415, "Unsupported content type: use application/json");
  }
  return parseParams(req.headers["content-type"], body);
}

function purposeOf(value: unknown): Purpose {
  if (value === undefined || value === null) return "login";
  if (typeof value !== "string") throw oauthErrors.invalidRequest.notAString("purpose");
  if (value === "login" || value === "mfa-api") return value;
  throw oauthErrors.invalidRequest.unsupportedValue('purpose must be "login" or "mfa-api"');
}
