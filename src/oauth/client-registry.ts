import { SIGNING_ALGORITHMS, type SigningAlgorithm } from "../tokens/signing-keys.js";
import { ACCEPTED_PUBLIC_KEYS, publicKeyProblem } from "./key-policy.js";
import {
  parseRefreshTokenSettings,
  type RefreshTokenSettings,
} from "./sessions/refresh-token-settings.js";

/** How a client proves who it is at the token endpoint. */
export const CLIENT_AUTH_METHODS = [
  "client_secret_post",
  "client_secret_basic",
  "private_key_jwt",
  "none",
] as const;
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];

export interface RegisteredClient {
  clientId: string;
  /** Present for the client_secret_* methods. */
  clientSecret?: string;
  authMethod: ClientAuthMethod;
  grantTypes: readonly string[];
  /** Public keys for private_key_jwt (RFC 7523). */
  jwks?: { keys: Record<string, unknown>[] };
  /**
   * OpenID Connect Dynamic Client Registration §2 `id_token_signed_response_alg`:
   * the algorithm of this client's ID tokens (default RS256, the OpenID
   * Connect default, which Auth0's browser and mobile libraries require).
   */
  idTokenSigningAlg: SigningAlgorithm;
  /** Exact origins allowed to call from a browser (CORS); Auth0's `allowed_origins`. */
  allowedOrigins: readonly string[];
  /** The `refresh_token` object (Auth0's names), defaults filled in. */
  refreshToken: RefreshTokenSettings;
}

export type ClientRegistry = ReadonlyMap<string, RegisteredClient>;

/**
 * Validates the parsed CLIENTS_FILE. Every problem is collected (the config
 * loader reports them all at once) rather than thrown at the first.
 */
export function parseClients(
  json: unknown,
  where: string,
): { clients: ClientRegistry; problems: string[] } {
  const problems: string[] = [];
  const clients = new Map<string, RegisteredClient>();
  const list = (json as { clients?: unknown } | null)?.clients;
  if (!Array.isArray(list)) {
    return { clients, problems: [`${where}: expected {"clients": [...]}`] };
  }
  list.forEach((raw: unknown, index) => {
    const at = `${where}: clients[${index}]`;
    const entry = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
    const {
      client_id,
      client_secret,
      token_endpoint_auth_method,
      grant_types,
      jwks,
      id_token_signed_response_alg,
      allowed_origins,
    } = entry;
    if (typeof client_id !== "string" || client_id === "") {
      problems.push(`${at}: "client_id" must be a non-empty string`);
      return;
    }
    if (clients.has(client_id)) problems.push(`${at}: duplicate client_id "${client_id}"`);
    const method = token_endpoint_auth_method ?? "client_secret_post";
    if (!(CLIENT_AUTH_METHODS as readonly unknown[]).includes(method)) {
      problems.push(
        `${at}: "token_endpoint_auth_method" must be one of ${CLIENT_AUTH_METHODS.join(", ")}`,
      );
      return;
    }
    const authMethod = method as ClientAuthMethod;
    const needsSecret = authMethod === "client_secret_post" || authMethod === "client_secret_basic";
    if (needsSecret && (typeof client_secret !== "string" || client_secret === "")) {
      problems.push(`${at}: "client_secret" is required for ${authMethod}`);
    }
    const grantTypes = grant_types ?? [];
    if (!Array.isArray(grantTypes) || grantTypes.some((g) => typeof g !== "string")) {
      problems.push(`${at}: "grant_types" must be an array of strings`);
    }
    const keys = (jwks as { keys?: unknown } | undefined)?.keys;
    if (authMethod === "private_key_jwt" && (!Array.isArray(keys) || keys.length === 0)) {
      problems.push(`${at}: "jwks" with at least one key is required for private_key_jwt`);
    }
    // SPEC §4: every key the service verifies with has a bounded cost (key-policy.ts).
    if (Array.isArray(keys)) {
      keys.forEach((key: unknown, i) => {
        const problem = publicKeyProblem(key);
        if (problem !== undefined) {
          problems.push(
            `${at}: "jwks" keys[${i}] is refused (${problem}): ${ACCEPTED_PUBLIC_KEYS}`,
          );
        }
      });
    }
    const idTokenSigningAlg = id_token_signed_response_alg ?? "RS256";
    if (!(SIGNING_ALGORITHMS as readonly unknown[]).includes(idTokenSigningAlg)) {
      problems.push(
        `${at}: "id_token_signed_response_alg" must be one of ${SIGNING_ALGORITHMS.join(", ")}`,
      );
    }
    const origins = allowed_origins ?? [];
    if (!Array.isArray(origins) || origins.some((o) => !isOrigin(o))) {
      problems.push(
        `${at}: "allowed_origins" must be an array of origins such as "https://app.example.com" (scheme, host and port only)`,
      );
    }
    const refreshToken = parseRefreshTokenSettings(entry.refresh_token, at);
    problems.push(...refreshToken.problems);
    clients.set(client_id, {
      clientId: client_id,
      ...(needsSecret && typeof client_secret === "string" ? { clientSecret: client_secret } : {}),
      authMethod,
      grantTypes: Array.isArray(grantTypes) ? (grantTypes as string[]) : [],
      ...(Array.isArray(keys) ? { jwks: { keys: keys as Record<string, unknown>[] } } : {}),
      idTokenSigningAlg: idTokenSigningAlg as SigningAlgorithm,
      allowedOrigins: Array.isArray(origins) ? origins.filter(isOrigin) : [],
      refreshToken: refreshToken.settings,
    });
  });
  return { clients, problems };
}

/** An origin as browsers send it (RFC 6454 §6.2): scheme, host and optional port, nothing else. */
function isOrigin(value: unknown): value is string {
  if (typeof value !== "string") return false;
  try {
    const url = new URL(value);
    return (url.protocol === "https:" || url.protocol === "http:") && url.origin === value;
  } catch {
    return false;
  }
}
