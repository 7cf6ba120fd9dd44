/**
 * IP address text as the client-address rules need it. Parsing IPv6 (`::`
 * compression, embedded IPv4, IPv4-mapped forms) and masking prefixes is
 * left to ipaddr.js (the parser behind Express's proxy-addr), not written
 * by hand.
 */
import ipaddr from "ipaddr.js";

/**
 * The canonical text of one IP address as a socket, an X-Forwarded-For entry
 * or an `auth0-forwarded-for` header gives it: IPv4 in dotted decimal, IPv6
 * in RFC 5952 form, an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a
 * dual-stack socket reports for IPv4 clients) as the IPv4 address, a port,
 * brackets or an IPv6 zone dropped. undefined when the text is not one IP
 * address (IPv4 only in its four-part decimal form: `1` or `0x7f.1` are not
 * accepted as addresses).
 */
export function canonicalIp(text: string): string | undefined {
  let host = text.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(host);
  if (bracketed?.[1] !== undefined) host = bracketed[1];
  else if (/^[\d.]+:\d{1,5}$/.test(host)) host = host.slice(0, host.indexOf(":"));
  const zone = host.indexOf("%");
  if (zone >= 0) host = host.slice(0, zone);
  if (ipaddr.IPv4.isValidFourPartDecimal(host)) return ipaddr.IPv4.parse(host).toString();
  if (!ipaddr.IPv6.isValid(host)) return undefined;
  const parsed = ipaddr.IPv6.parse(host);
  return parsed.isIPv4MappedAddress() ? parsed.toIPv4Address().toString() : parsed.toString();
}

/**
 * What an address is throttled as: an IPv4 address itself; an IPv6
 * address's /64 network. One IPv6 subscriber is normally given a whole /64
 * or more (RFC 6177), so keying by the full address would let one client
 * take as many buckets as it likes. Anything that is not a canonical IP (an
 * opaque identifier a trusted proxy wrote) is used as it is.
 */
export function throttledNetwork(address: string): string {
  if (!ipaddr.IPv6.isValid(address) || ipaddr.IPv4.isValidFourPartDecimal(address)) {
    return address;
  }
  return `${ipaddr.IPv6.networkAddressFromCIDR(`${address}/64`).toString()}/64`;
}

/**
 * A coarse network for logs: the /24 of an IPv4 address, the /48 of an IPv6
 * one (a site), "other" for anything else. Enough to see where an attack
 * comes from and to block a range, without logging any one person's address.
 */
export function logNetwork(address: string): string {
  if (ipaddr.IPv4.isValidFourPartDecimal(address)) {
    return `${ipaddr.IPv4.networkAddressFromCIDR(`${address}/24`).toString()}/24`;
  }
  if (ipaddr.IPv6.isValid(address)) {
    return `${ipaddr.IPv6.networkAddressFromCIDR(`${address}/48`).toString()}/48`;
  }
  return "other";
}
