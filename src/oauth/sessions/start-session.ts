import type { RegisteredClient } from "../client-registry.js";
import type { SessionDeps } from "./session-deps.js";
import { OFFLINE_ACCESS, REFRESH_TOKEN_GRANT, sessionPolicyOf } from "./session-policy.js";
import { scopeValues } from "./session-scope.js";

export interface StartSessionInput {
  client: Pick<RegisteredClient, "clientId" | "authMethod" | "grantTypes" | "refreshToken">;
  /** The login just completed (the mfa-otp or mfa-recovery-code grant). */
  userId: string;
  audience: string;
  /** The scope granted (the mfa_token's). */
  scope: string;
  amr: readonly string[];
  /** Thumbprint of the valid DPoP proof sent with the login, if any. */
  dpopJkt?: string | undefined;
  nowMs: number;
}

/** Whether a login gets a refresh token: `offline_access` granted and the grant allowed. */
export function offersRefreshToken(
  client: Pick<RegisteredClient, "grantTypes">,
  scope: string,
): boolean {
  return (
    client.grantTypes.includes(REFRESH_TOKEN_GRANT) && scopeValues(scope).includes(OFFLINE_ACCESS)
  );
}

/**
 * Starts a family after a successful login and returns its first refresh
 * token, or undefined when the login gets none (see `offersRefreshToken`).
 * One store step. A public client's family is bound to the login's DPoP key
 * (RFC 9449 §5: refresh tokens of public clients are sender-constrained);
 * a confidential client's is bound by its client authentication instead.
 */
export async function startSession(
  deps: SessionDeps,
  input: StartSessionInput,
): Promise<string | undefined> {
  const { client } = input;
  if (!offersRefreshToken(client, input.scope)) return undefined;
  const jkt = client.authMethod === "none" ? input.dpopJkt : undefined;
  const familyId = deps.codec.newFamilyId();
  const token = deps.codec.seal({
    userId: input.userId,
    familyId,
    clientId: client.clientId,
    audience: input.audience,
    scope: input.scope,
    amr: [...input.amr],
    authTime: Math.floor(input.nowMs / 1000),
    ...(jkt ? { jkt } : {}),
  });
  // The cap (MAX_SESSIONS_PER_USER) is applied in the same step.
  await deps.store.createFamily({
    family: { userId: input.userId, familyId },
    tokenHash: deps.hash(token),
    nowMs: input.nowMs,
    policy: sessionPolicyOf(client.refreshToken),
    ...(deps.maxFamiliesPerUser !== undefined ? { maxFamilies: deps.maxFamiliesPerUser } : {}),
  });
  return token;
}
