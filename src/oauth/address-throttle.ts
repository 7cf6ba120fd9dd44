import { createHmac } from "node:crypto";
import type { AddressBucket, BucketPolicy } from "../store/store.js";
import { canonicalIp, logNetwork, throttledNetwork } from "../util/ip-address.js";
import type { RegisteredClient } from "./client-registry.js";

/** A client address's failure bucket, with what a log line may say about the address. */
export interface ThrottledAddress extends AddressBucket {
  /** The coarse network (IPv4 /24, IPv6 /48), never the address itself (ip-address.ts). */
  network: string;
}

/** Where a code verification's request says it comes from (TokenRequest). */
export interface RequestAddress {
  /** The network address: the socket's peer, or X-Forwarded-For through TRUST_PROXY hops. */
  clientAddress: string;
  /** Auth0's `auth0-forwarded-for` header, as sent (believed only as settings say). */
  auth0ForwardedFor?: string;
}

export interface AddressThrottleSettings {
  policy: BucketPolicy;
  /** HMAC key of bucket ids: neither the store nor the logs can recover an address. */
  key: Buffer;
  /** TRUST_AUTH0_FORWARDED_FOR. */
  trustAuth0ForwardedFor: boolean;
}

/**
 * The second failure bucket of code verification, per client address: it
 * slows credential stuffing, where one address tries codes for many users
 * whose passwords it holds, each user's own bucket being fresh.
 */
export interface AddressThrottle {
  /** The bucket a code verification by `client` from `request` is charged to. */
  bucketFor(request: RequestAddress, client: RegisteredClient): ThrottledAddress;
  /**
   * The same bucket for a call that names no client (a refused internal API
   * key, SPEC §2): the network address alone.
   */
  bucketForAddress(clientAddress: string): ThrottledAddress;
}

/** Bucket ids: 132 bits of HMAC-SHA256, base64url. */
const ID_CHARS = 22;

export function createAddressThrottle(settings: AddressThrottleSettings): AddressThrottle {
  const { policy, key } = settings;
  const bucketOf = (address: string): ThrottledAddress => {
    const id = createHmac("sha256", key)
      .update(throttledNetwork(address), "utf8")
      .digest("base64url")
      .slice(0, ID_CHARS);
    return { id, policy, network: logNetwork(address) };
  };
  return {
    bucketFor(request, client) {
      return bucketOf(effectiveAddress(request, client, settings.trustAuth0ForwardedFor));
    },
    bucketForAddress: bucketOf,
  };
}

/**
 * Auth0's rule for `auth0-forwarded-for`: a backend that calls the token
 * endpoint on its users' behalf names the user's address in it, and it is
 * believed only from a confidential client (one that authenticated with a
 * secret or an assertion: a public client could name any address and so
 * escape its bucket), only when the operator turned it on, and only when it
 * holds exactly one IP address. Otherwise the network address counts.
 */
function effectiveAddress(
  request: RequestAddress,
  client: RegisteredClient,
  trustAuth0ForwardedFor: boolean,
): string {
  const forwarded = request.auth0ForwardedFor;
  if (!trustAuth0ForwardedFor || client.authMethod === "none" || forwarded === undefined) {
    return request.clientAddress;
  }
  return canonicalIp(forwarded) ?? request.clientAddress;
}
