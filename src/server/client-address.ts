import { canonicalIp } from "../util/ip-address.js";
import type { HttpRequest } from "./http-types.js";

/** The address of the client a request comes from, as the surfaces hand it to the service. */
export type ClientAddressOf = (req: HttpRequest) => string;

/**
 * Auth0's header in which a confidential client names the address of the
 * user it calls for (believed only as src/oauth/address-throttle.ts says).
 */
export const AUTH0_FORWARDED_FOR = "auth0-forwarded-for";

/** A request whose peer address cannot be read (its socket already closed). */
export const UNKNOWN_ADDRESS = "unknown";

/** The longest X-Forwarded-For entry used as it is when it is not an IP address. */
const MAX_OPAQUE_ENTRY = 64;

/**
 * The client address of a request: the socket's peer, unless `TRUST_PROXY`
 * says `hops` proxies stand in front of the service. Then each of them
 * appended the address it received the request from to `X-Forwarded-For`,
 * so the client is the entry `hops` places from the right: with one proxy
 * the last entry, which that proxy wrote (as Express's numeric `trust proxy`
 * reads it). Entries further left were written by whoever sent the request
 * and are never believed; with `hops` = 0 the header is ignored altogether.
 * A header with fewer entries than hops gives its leftmost one (every entry
 * was written by a trusted proxy); none at all gives the socket's peer.
 *
 * Written by hand: picking one entry by position is a few lines, where
 * proxy-addr would bring two dependencies for the same rule.
 *
 * RFC 7239 `Forwarded` is not read: proxies that write it write
 * X-Forwarded-For too, and reading both would give two answers to one question.
 */
export function createClientAddressOf(hops: number): ClientAddressOf {
  return (req) => {
    const peer = canonicalIp(req.socket?.remoteAddress ?? "") ?? UNKNOWN_ADDRESS;
    if (hops === 0) return peer;
    const entries = forwardedForEntries(req.headers["x-forwarded-for"]);
    if (entries.length === 0) return peer;
    const entry = entries[Math.max(0, entries.length - hops)] ?? "";
    return canonicalIp(entry) ?? entry.slice(0, MAX_OPAQUE_ENTRY);
  };
}

/** X-Forwarded-For's entries in order; repeated headers count as one list (RFC 9110 §5.3). */
function forwardedForEntries(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  const joined = Array.isArray(header) ? header.join(",") : header;
  return joined
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
}
