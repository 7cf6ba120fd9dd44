import { createHash, timingSafeEqual } from "node:crypto";
import type { AddressThrottle } from "../oauth/address-throttle.js";
import { oauthErrors } from "../oauth/oauth-error.js";
import type { SecurityEvents } from "../observability/security-events.js";
import type { Store } from "../store/store.js";
import type { Clock } from "../util/clock.js";
import { logNetwork } from "../util/ip-address.js";

const sha256 = (value: string) => createHash("sha256").update(value, "utf8").digest();

/**
 * The constant-time comparison of a presented key with `INTERNAL_API_KEY`,
 * over SHA-256 digests (equal lengths whatever was presented).
 */
export function createInternalApiKeyCheck(internalApiKey: string) {
  const expected = sha256(internalApiKey);
  return (presented: string | undefined): boolean =>
    presented !== undefined && timingSafeEqual(expected, sha256(presented));
}

/** What an internal call (token.v1.MfaTokenService) presents. */
export interface InternalCall {
  /** The bearer credential the caller presented (`INTERNAL_API_KEY`). */
  apiKey: string | undefined;
  /** The caller's network address (server/client-address.ts); absent for in-process callers. */
  clientAddress?: string;
}

export interface InternalKeyGateDeps {
  internalApiKey: string;
  store: Pick<Store, "takeAddressAttempt" | "addressRetryAfter">;
  clock: Clock;
  events: SecurityEvents;
  /** Per-address throttling (ADDRESS_THROTTLING); undefined when off. */
  addressThrottle?: AddressThrottle;
}

/** Checks one internal call's key; `rpc` names the method in the refusal's event. */
export type InternalKeyGate = (call: InternalCall, rpc: string) => Promise<void>;

/**
 * The gate of the internal RPCs (SPEC §2): the key must be
 * `INTERNAL_API_KEY`, else `Unauthenticated`. Where per-address throttling
 * is on, a refused key takes one attempt from the caller's address bucket
 * (the one wrong codes drain), and while that bucket is empty every key —
 * the right one too — is `too_many_attempts` with its `Retry-After`, so the
 * key cannot be guessed at any useful rate. Each refusal is an
 * `internal_key_refused` security event: the method, the outcome and the
 * address's coarse network and bucket id, never the key presented.
 */
export function createInternalKeyGate(deps: InternalKeyGateDeps): InternalKeyGate {
  const matches = createInternalApiKeyCheck(deps.internalApiKey);
  const refused = (call: InternalCall, rpc: string, extra: Record<string, string | number>) =>
    deps.events.record("internal_key_refused", {
      outcome: "refused",
      rpc,
      ...(call.clientAddress !== undefined
        ? { address_network: logNetwork(call.clientAddress) }
        : {}),
      ...extra,
    });
  return async (call, rpc) => {
    const right = matches(call.apiKey);
    const address =
      call.clientAddress === undefined
        ? undefined
        : deps.addressThrottle?.bucketForAddress(call.clientAddress);
    if (address === undefined) {
      if (right) return;
      refused(call, rpc, {});
      throw oauthErrors.accessDenied.internalApiKey();
    }
    const nowMs = deps.clock.nowMs();
    const wait = right
      ? await deps.store.addressRetryAfter(address, nowMs)
      : await deps.store.takeAddressAttempt(address, nowMs);
    if (wait > 0) {
      refused(call, rpc, {
        outcome: "locked",
        address_id: address.id,
        retry_after_seconds: wait,
      });
      throw oauthErrors.tooManyAttempts(wait);
    }
    if (right) return;
    refused(call, rpc, { address_id: address.id });
    throw oauthErrors.accessDenied.internalApiKey();
  };
}

/** The longest user id an internal call accepts (IssueMfaToken's limit: no login exists for a longer one). */
export const MAX_USER_ID_LENGTH = 255;

/**
 * What every internal call about one user checks first, in order: the key
 * (`Unauthenticated`, or `too_many_attempts` while the caller's address is
 * locked out), then `user_id` present (row 3) and within its limit.
 */
export function createInternalUserCall(gate: InternalKeyGate, rpc: string) {
  return async (request: InternalCall & { userId: string }): Promise<void> => {
    await gate(request, rpc);
    if (request.userId === "") throw oauthErrors.invalidRequest.missingParameter("user_id");
    if (request.userId.length > MAX_USER_ID_LENGTH) {
      throw oauthErrors.invalidRequest.tooLong("user_id", MAX_USER_ID_LENGTH);
    }
  };
}
