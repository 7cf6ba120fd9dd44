import { createHash, timingSafeEqual } from "node:crypto";
import type { Logger } from "../observability/logger.js";
import { derived } from "../util/derived.js";
import { assertionSubject } from "./client-assertion.js";
import type { ClientRegistry, RegisteredClient } from "./client-registry.js";
import { oauthErrors } from "./oauth-error.js";

/** What a request presented to authenticate its client, as both surfaces collect it. */
export interface ClientCredentials {
  clientId?: unknown;
  clientSecret?: unknown;
  clientAssertion?: unknown;
  clientAssertionType?: unknown;
  /** The raw `Authorization` header, for client_secret_basic (RFC 6749 §2.3.1). */
  authorization?: string | undefined;
}

/** Verifies a private_key_jwt assertion (RFC 7523); plugged in by the DPoP/JWT issue. */
export type AssertionVerifier = (client: RegisteredClient, assertion: string) => Promise<boolean>;

export interface ClientAuthenticator {
  /** The authenticated client, or throws error row 1. */
  authenticate(credentials: ClientCredentials): Promise<RegisteredClient>;
}

const sha256 = (value: string) => createHash("sha256").update(value, "utf8").digest();

/**
 * docs/configuration.md: a client authenticates with its registered method and only that
 * one; presenting more than one method is refused (RFC 6749 §2.3 "MUST NOT
 * use more than one authentication method in each request"). Secrets are
 * compared in constant time over SHA-256 digests (equal lengths whatever the
 * input), and the registered digests are computed once, not per request.
 * Every failure is the same 401, whichever rule failed.
 */
export function createClientAuthenticator(
  clients: () => ClientRegistry,
  verifyAssertion?: AssertionVerifier,
  logger?: Logger,
): ClientAuthenticator {
  // Per client object, so a reloaded client (a new object) gets its new secret's digest.
  const secretDigests = derived(clients, (registry) => {
    const digests = new WeakMap<RegisteredClient, Buffer>();
    for (const client of registry.values()) {
      if (client.clientSecret !== undefined) digests.set(client, sha256(client.clientSecret));
    }
    return digests;
  });
  const secretMatches = (client: RegisteredClient, presented: string) => {
    const expected = secretDigests().get(client);
    return expected !== undefined && timingSafeEqual(expected, sha256(presented));
  };

  return {
    async authenticate(credentials) {
      const basic = parseBasic(credentials.authorization);
      /**
       * One answer for every rule (row 1). The rule is logged at debug —
       * never a secret or assertion. RFC 6749 §5.2: a client that tried the
       * Authorization header gets a WWW-Authenticate challenge for its scheme.
       */
      const refuse = (reason: string, clientIdForLog?: string): never => {
        logger?.debug({ event: "client_auth_rejected", client_id: clientIdForLog, reason }, reason);
        const error = oauthErrors.accessDenied.clientAuthentication();
        throw basic === undefined
          ? error
          : error.withHeader("www-authenticate", 'Basic realm="token-service"');
      };
      const { clientId, clientSecret, clientAssertion, clientAssertionType } = credentials;
      if (basic === "malformed") refuse("malformed Basic authorization header");
      const presentsSecret = clientSecret !== undefined;
      const presentsAssertion = clientAssertion !== undefined || clientAssertionType !== undefined;
      if (Number(basic !== undefined) + Number(presentsSecret) + Number(presentsAssertion) > 1) {
        refuse("more than one client authentication method");
      }
      const fromBasic = basic === "malformed" ? undefined : basic;
      const id = fromBasic?.clientId ?? clientId ?? assertionSubject(clientAssertion);
      if (typeof id !== "string") return refuse("no client_id");
      if (fromBasic !== undefined && clientId !== undefined && clientId !== id) {
        refuse("client_id differs from the Basic credentials");
      }
      const client = clients().get(id);
      if (client === undefined) return refuse("unknown client");

      let ok = false;
      switch (client.authMethod) {
        case "client_secret_basic":
          ok = fromBasic !== undefined && secretMatches(client, fromBasic.clientSecret);
          break;
        case "client_secret_post":
          ok = typeof clientSecret === "string" && secretMatches(client, clientSecret);
          break;
        case "none":
          ok = basic === undefined && !presentsSecret && !presentsAssertion;
          break;
        case "private_key_jwt":
          ok =
            verifyAssertion !== undefined &&
            clientAssertionType === "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" &&
            typeof clientAssertion === "string" &&
            (await verifyAssertion(client, clientAssertion));
          break;
      }
      if (!ok) refuse(`${client.authMethod} authentication failed`, client.clientId);
      return client;
    },
  };
}

/**
 * RFC 6749 §2.3.1 / RFC 7617: `Basic base64(urlencode(id) ":" urlencode(secret))`.
 * undefined when no Basic header was sent; "malformed" when one was sent but is unusable.
 */
function parseBasic(
  header: string | undefined,
): { clientId: string; clientSecret: string } | undefined | "malformed" {
  if (header === undefined || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return "malformed";
  try {
    const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, " "));
    return {
      clientId: decode(decoded.slice(0, colon)),
      clientSecret: decode(decoded.slice(colon + 1)),
    };
  } catch {
    return "malformed";
  }
}
