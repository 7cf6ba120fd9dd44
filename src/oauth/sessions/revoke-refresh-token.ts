import type { RegisteredClient } from "../client-registry.js";
import type { SessionDeps } from "./session-deps.js";

export interface RevokeRefreshTokenInput {
  /** The client, already authenticated as registered. */
  client: Pick<RegisteredClient, "clientId">;
  /** The `token` parameter, whatever it holds (RFC 7009 §2.1). */
  token: string;
  nowMs: number;
}

/**
 * RFC 7009 revocation: revokes the family of a refresh token issued to this
 * client. An unknown, malformed, expired or already revoked token, an access
 * token (a JWT: not revocable), and a token of another client are all left as
 * they are, silently (§2.2: the answer is the same 200 in every case, so it
 * reveals nothing about a token the caller does not own). `token_type_hint`
 * needs no handling: only refresh tokens are revocable (§2.1 lets the server
 * ignore it).
 */
export async function revokeRefreshToken(
  deps: SessionDeps,
  input: RevokeRefreshTokenInput,
): Promise<void> {
  const claims = deps.codec.open(input.token);
  if (claims === null || claims.clientId !== input.client.clientId) return;
  await deps.store.revokeFamilyByToken(
    { userId: claims.userId, familyId: claims.familyId },
    input.nowMs,
  );
}

/**
 * Revokes every family of one user (account compromise, password change) in
 * one store step; returns how many live families were revoked.
 */
export function revokeUserSessions(
  deps: SessionDeps,
  input: { userId: string; nowMs: number },
): Promise<number> {
  return deps.store.revokeUserFamilies(input.userId, input.nowMs);
}
