/**
 * The JWS Compact Serialization's shape (RFC 7515 §7.1): three base64url
 * parts joined by dots. A cheap test before any parsing or key lookup.
 */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export function isCompactJws(value: string): boolean {
  return COMPACT_JWS.test(value);
}
