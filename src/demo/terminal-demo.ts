import { randomBytes } from "node:crypto";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { parseCommandArgs } from "../cli/parse-command-args.js";
import { generateTotp } from "../mfa/totp.js";
import { DEMO_CLIENT_SECRET } from "../oauth/demo-client.js";
import { otpauthQrText } from "./qr-code.js";

export const TERMINAL_DEMO_HELP = `Usage: npm run demo -- [--auto] [--url <url>] [--internal-key <key>]

The demo page's flow in a terminal, against a running service (npm start):
a demo login (IssueMfaToken with the internal API key), Associate with the
QR code printed as text, the mfa-otp grant with a code from your
authenticator app (or, with --auto, computed here), the token response and
its decoded claims; then a recovery-code login for the MFA API and the
deletion of the authenticator.

Options:
  --auto                 compute the code instead of asking for it
  --url <url>            the service (default http://localhost:8080)
  --internal-key <key>   the internal API key npm start prints (or INTERNAL_API_KEY)
  --client-id <id>       the client to log in as (default demo-app)
  --client-secret <s>    its secret, sent as client_secret_post (default the demo client's)

Exit status: 0 when every step succeeded; 1 with one line on stderr when the
service is down or answers an error; 64 for a usage error.
`;

const MFA_OTP_GRANT = "http://auth0.com/oauth/grant-type/mfa-otp";
const MFA_RECOVERY_CODE_GRANT = "http://auth0.com/oauth/grant-type/mfa-recovery-code";
const MFA_API_SCOPE = "read:authenticators remove:authenticators";
/** A service that accepts the connection but never answers still ends the demo. */
const REQUEST_TIMEOUT_MS = 15_000;
/** Interactive mode: typing slips get a few tries (each wrong one drains the failure bucket). */
const INTERACTIVE_TRIES = 3;

export interface TerminalDemoIo {
  out(text: string): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** One line typed by the user, or undefined at the end of input. */
  readLine(prompt: string): Promise<string | undefined>;
  nowMs(): number;
}

/** A failure the demo reports as one line. */
class DemoError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    /** The token endpoint's `error` code, when the service answered one. */
    readonly oauthError?: string,
  ) {
    super(message);
  }
}

interface TokenResponse {
  access_token: string;
  id_token?: string;
  recovery_code?: string;
  [name: string]: unknown;
}

/** Runs the demo; returns the exit status. Every failure is one line on stderr. */
export async function runTerminalDemo(
  args: readonly string[],
  io: TerminalDemoIo,
): Promise<number> {
  try {
    return await demo(args, io);
  } catch (error) {
    const known = error instanceof DemoError;
    const message = error instanceof Error ? error.message : String(error);
    io.err(`demo: ${known ? message : `unexpected error: ${message.split("\n")[0]}`}\n`);
    return known ? error.exitCode : 1;
  }
}

async function demo(args: readonly string[], io: TerminalDemoIo): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(args);
  } catch (error) {
    throw new DemoError(`${(error as Error).message} (see npm run demo -- --help)`, 64);
  }
  const { values } = parsed;
  if (values.help) {
    io.out(TERMINAL_DEMO_HELP);
    return 0;
  }
  const internalKey = values["internal-key"] ?? io.env.INTERNAL_API_KEY;
  if (internalKey === undefined || internalKey === "") {
    throw new DemoError(
      "the internal API key is needed: pass --internal-key <key> or set INTERNAL_API_KEY (npm start prints the generated one)",
      64,
    );
  }
  let base: URL;
  try {
    base = new URL(values.url ?? "http://localhost:8080");
    if (base.protocol !== "http:" && base.protocol !== "https:") throw new Error();
  } catch {
    throw new DemoError(`--url must be an http(s) URL (got "${values.url}")`, 64);
  }
  const clientId = values["client-id"] ?? "demo-app";
  const clientSecret = values["client-secret"] ?? DEMO_CLIENT_SECRET;
  const http = createHttp(base);
  const line = (text = "") => io.out(`${text}\n`);
  const json = (value: unknown) => line(indent(JSON.stringify(value, null, 2)));

  const discovery = await http<{ issuer: string }>("GET", "/.well-known/openid-configuration");
  line(`token-service demo against ${base.origin} (issuer ${discovery.issuer})`);

  const userId = `demo-${randomBytes(16).toString("base64url")}`;
  const issue = (audience: string, scope: string) =>
    http<{ mfaToken: string; mfaRequirements?: Record<string, unknown> }>(
      "POST",
      "/token.v1.MfaTokenService/IssueMfaToken",
      {
        json: { userId, clientId, audience, scope, userLabel: userId.slice(0, 11) },
        headers: { authorization: `Bearer ${internalKey}` },
      },
    );
  const token = (params: Record<string, string>) =>
    http<TokenResponse>("POST", "/oauth/token", {
      form: { ...params, client_id: clientId, client_secret: clientSecret },
    });

  line();
  line(`1. Demo login: IssueMfaToken (internal API key) for the new user ${userId}`);
  const login = await issue("", "openid profile");
  line(`   mfa_requirements: ${JSON.stringify(login.mfaRequirements ?? {})}`);

  line();
  line("2. POST /mfa/associate: scan this with an authenticator app");
  const enrolled = await http<{ secret: string; barcode_uri: string; recovery_codes?: string[] }>(
    "POST",
    "/mfa/associate",
    {
      json: { authenticator_types: ["otp"] },
      headers: { authorization: `Bearer ${login.mfaToken}` },
    },
  );
  line(await otpauthQrText(enrolled.barcode_uri));
  line(`   secret:        ${enrolled.secret}`);
  line(`   barcode_uri:   ${enrolled.barcode_uri}`);
  const recoveryCode = enrolled.recovery_codes?.[0];
  if (recoveryCode === undefined) throw new DemoError("Associate returned no recovery code");
  line(`   recovery code: ${recoveryCode} (step 4 logs in with it instead of the phone)`);

  line();
  line("3. POST /oauth/token, grant mfa-otp");
  let tokens: TokenResponse | undefined;
  for (let attempt = 1; tokens === undefined; attempt++) {
    let otp: string;
    if (values.auto) {
      otp = generateTotp(enrolled.secret, Math.floor(io.nowMs() / 1000));
      line(`   code (computed, --auto): ${otp}`);
    } else {
      const typed = await io.readLine("   6-digit code from the app: ");
      if (typed === undefined) throw new DemoError("no code was typed (input ended)");
      otp = typed.replace(/\s+/g, "");
    }
    try {
      tokens = await token({ grant_type: MFA_OTP_GRANT, mfa_token: login.mfaToken, otp });
    } catch (error) {
      const retry =
        !values.auto &&
        attempt < INTERACTIVE_TRIES &&
        error instanceof DemoError &&
        error.oauthError === "invalid_grant";
      if (!retry) throw error;
      line(`   ${(error as Error).message}; try again`);
    }
  }
  line("   token response:");
  json(tokens);
  line("   access token:");
  json({
    header: decodeProtectedHeader(tokens.access_token),
    claims: decodeJwt(tokens.access_token),
  });
  if (tokens.id_token !== undefined) {
    line("   ID token:");
    json({ header: decodeProtectedHeader(tokens.id_token), claims: decodeJwt(tokens.id_token) });
  }

  line();
  line("4. Lost the phone: a recovery-code login for the MFA API, then delete the authenticator");
  const mfaApi = new URL("mfa/", discovery.issuer).href;
  const apiLogin = await issue(mfaApi, MFA_API_SCOPE);
  line(`   IssueMfaToken (audience ${mfaApi}, scope ${MFA_API_SCOPE})`);
  const recovered = await token({
    grant_type: MFA_RECOVERY_CODE_GRANT,
    mfa_token: apiLogin.mfaToken,
    recovery_code: recoveryCode,
  });
  line("   POST /oauth/token, grant mfa-recovery-code:");
  json({
    token_type: recovered.token_type,
    scope: recovered.scope,
    amr: decodeJwt(recovered.access_token).amr,
  });
  line(`   new recovery code: ${recovered.recovery_code} (the used one is gone)`);
  const apiAuth = { headers: { authorization: `Bearer ${recovered.access_token}` } };
  const listed = await http<{ id: string; authenticator_type: string }[]>(
    "GET",
    "/mfa/authenticators",
    apiAuth,
  );
  line("   GET /mfa/authenticators:");
  json(listed);
  const otpAuthenticator = listed.find((a) => a.authenticator_type === "otp");
  if (otpAuthenticator === undefined) throw new DemoError("the user has no OTP authenticator");
  const path = `/mfa/authenticators/${encodeURIComponent(otpAuthenticator.id)}`;
  await http("DELETE", path, apiAuth);
  line(`   DELETE ${path} → 204`);
  line("   GET /mfa/authenticators:");
  json(await http("GET", "/mfa/authenticators", apiAuth));
  line();
  line(
    "Done: enrolled, logged in with a TOTP code and with the recovery code, authenticator removed.",
  );
  return 0;
}

function parseArgs(args: readonly string[]) {
  return parseCommandArgs(args, {
    auto: { type: "boolean" },
    url: { type: "string" },
    "internal-key": { type: "string" },
    "client-id": { type: "string" },
    "client-secret": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
}

type Http = <T = unknown>(
  method: string,
  path: string,
  options?: {
    json?: unknown;
    form?: Record<string, string>;
    headers?: Record<string, string>;
  },
) => Promise<T>;

/**
 * fetch against the service. A connection failure or a timeout says the
 * service is not there; an error answer names the call, its status and the
 * OAuth error (REST) or the Connect code and message (RPC).
 */
function createHttp(base: URL): Http {
  return async (method, path, options = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    let body: string | undefined;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (options.form !== undefined) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(options.form).toString();
    }
    let response: Response;
    try {
      response = await fetch(new URL(path.slice(1), base), {
        method,
        headers,
        body,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      throw new DemoError(
        `cannot reach the service at ${base.origin} (${reasonOf(error)}); start it with npm start, or pass --url`,
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const answer = parsed as
        | { error?: string; error_description?: string; code?: string; message?: string }
        | undefined;
      const what =
        answer?.error !== undefined
          ? `${answer.error}: ${answer.error_description}`
          : answer?.code !== undefined
            ? `${answer.code}: ${answer.message}`
            : text.slice(0, 120);
      throw new DemoError(
        `${method} ${path} answered ${response.status} ${what}`,
        1,
        answer?.error,
      );
    }
    return parsed as never;
  };
}

function reasonOf(error: unknown): string {
  if (error instanceof Error && error.name === "TimeoutError") {
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  }
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
}

function indent(text: string): string {
  return text.replace(/^/gm, "   ");
}
