/**
 * IP address text as the client-address rules need it, on every code
 * verification. Built on Node's own parsers (`net.isIPv4`/`isIPv6`, and the
 * WHATWG URL parser, which writes an IPv6 host in RFC 5952 form) rather than
 * ipaddr.js: that library took 12–16 µs to parse one IPv6 or IPv4-mapped
 * address here, half the cost of a whole wrong-code exchange, where these
 * take well under 1 µs.
 */
import { isIPv4, isIPv6 } from "node:net";

/** `::ffff:` + two hex groups: an IPv4-mapped address as the URL parser writes it. */
const MAPPED = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/**
 * The canonical text of one IP address as a socket, an X-Forwarded-For entry
 * or an `auth0-forwarded-for` header gives it: IPv4 in dotted decimal, IPv6
 * in RFC 5952 form, an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a
 * dual-stack socket reports for IPv4 clients) as the IPv4 address, a port,
 * brackets or an IPv6 zone dropped. undefined when the text is not one IP
 * address (IPv4 only in its four-part decimal form: `1` or `0x7f.1` are not
 * addresses here).
 */
export function canonicalIp(text: string): string | undefined {
  let host = text.trim();
  if (isIPv4(host)) return host;
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(host);
  if (bracketed?.[1] !== undefined) host = bracketed[1];
  else if (/^[\d.]+:\d{1,5}$/.test(host)) host = host.slice(0, host.indexOf(":"));
  const zone = host.indexOf("%");
  if (zone >= 0) host = host.slice(0, zone);
  if (isIPv4(host)) return host;
  if (!isIPv6(host)) return undefined;
  const canonical = ipv6Text(host);
  const mapped = MAPPED.exec(canonical);
  if (mapped?.[1] === undefined || mapped[2] === undefined) return canonical;
  const high = Number.parseInt(mapped[1], 16);
  const low = Number.parseInt(mapped[2], 16);
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join(".");
}

/**
 * What an address is throttled as: an IPv4 address itself; an IPv6
 * address's /64 network. One IPv6 subscriber is normally given a whole /64
 * or more (RFC 6177), so keying by the full address would let one client
 * take as many buckets as it likes. Anything else (an opaque identifier a
 * trusted proxy wrote) is used as it is.
 */
export function throttledNetwork(address: string): string {
  return isIPv6(address) ? ipv6Prefix(address, 64) : address;
}

/**
 * A coarse network for logs: the /24 of an IPv4 address, the /48 of an IPv6
 * one (a site), "other" for anything else. Enough to see where an attack
 * comes from and to block a range, without logging any one person's address.
 */
export function logNetwork(address: string): string {
  if (isIPv4(address)) return `${address.slice(0, address.lastIndexOf("."))}.0/24`;
  if (isIPv6(address)) return ipv6Prefix(address, 48);
  return "other";
}

/** RFC 5952 text of a valid IPv6 address (lowercase, longest zero run as `::`, hex only). */
function ipv6Text(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

/** The /48 or /64 network of a valid IPv6 address, as `<network>/<bits>`. */
function ipv6Prefix(address: string, bits: 48 | 64): string {
  const groups = ipv6Groups(ipv6Text(address)).slice(0, bits / 16);
  return `${ipv6Text(`${groups.join(":")}::`)}/${bits}`;
}

/** The eight hex groups of an IPv6 address in the URL parser's form (no dotted IPv4 tail). */
function ipv6Groups(text: string): string[] {
  const [head = "", tail] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  if (tail === undefined) return left;
  const right = tail === "" ? [] : tail.split(":");
  return [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
}
