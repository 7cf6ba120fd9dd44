/** Scope values of a space-separated scope string (RFC 6749 §3.3), without duplicates. */
export function scopeValues(scope: string): string[] {
  return [...new Set(scope.split(" ").filter((value) => value !== ""))];
}

/**
 * The scope an exchange grants (RFC 6749 §6): the requested scope when every
 * value of it was granted at the login, in the login's order; the login's
 * whole scope when none is requested (absent or blank); null when the request
 * holds a value not granted (`invalid_scope`).
 */
export function narrowScope(granted: string, requested: string | undefined): string | null {
  const grantedValues = scopeValues(granted);
  if (requested === undefined) return grantedValues.join(" ");
  const requestedValues = scopeValues(requested);
  if (requestedValues.length === 0) return grantedValues.join(" ");
  if (requestedValues.some((value) => !grantedValues.includes(value))) return null;
  return grantedValues.filter((value) => requestedValues.includes(value)).join(" ");
}
