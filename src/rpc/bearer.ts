/** The credential of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), or undefined. */
export function bearerTokenOf(authorization: string | null | undefined): string | undefined {
  if (!authorization) return undefined;
  const match = /^Bearer +([^\s]+)\s*$/i.exec(authorization);
  return match?.[1];
}
