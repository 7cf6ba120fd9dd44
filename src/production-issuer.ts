/**
 * SPEC §6, production issuer: with NODE_ENV=production ISSUER_URL must be set
 * and use https://, except on a loopback host (127.0.0.0/8, [::1],
 * localhost), where nothing crosses a network. The issuer is every token's
 * `iss` and the base of the URLs clients sign (DPoP `htu`, assertion `aud`):
 * a default `http://localhost:…/` one, or plain http on a network, is a
 * development default that production refuses. Returns the refusal, or
 * undefined when the issuer is fine (or already refused as malformed).
 */
export function productionIssuerRefusal(raw: string | undefined): string | undefined {
  if (raw === undefined) {
    return "a missing ISSUER_URL (set it to the https:// URL clients reach, e.g. ISSUER_URL=https://auth.example.com/)";
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" || isLoopbackHost(url.hostname)) return undefined;
  return `a plain-http ISSUER_URL ("${raw}": http:// only for a loopback host, 127.0.0.0/8, [::1] or localhost; use https://)`;
}

/** URL.hostname spells IPv6 hosts in brackets and IPv4 hosts in dotted decimal. */
function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname);
}
