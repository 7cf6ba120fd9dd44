import { type ContextValues, createContextKey, createContextValues } from "@connectrpc/connect";
import type { ClientCredentials } from "../oauth/client-auth.js";
import type { RegisteredClient } from "../oauth/client-registry.js";
import { type ClientAddressOf, UNKNOWN_ADDRESS } from "../server/client-address.js";
import type { HttpRequest } from "../server/http-types.js";
import { wireString } from "../service/wire-values.js";

/**
 * The part of a call's context the RPC implementations use. connect-es's
 * HandlerContext satisfies it, and so does the unary fast path's, so an
 * implementation runs unchanged on both.
 */
export interface CallHeaders {
  requestHeader: { get(name: string): string | null };
  responseHeader: { set(name: string, value: string): void };
  /** Per-call values set from the request before the call: CLIENT_ADDRESS. */
  /** The call's context values: CLIENT_ADDRESS, and the access record (call-record.ts). */
  values: ContextValues;
}

/** The client's network address (server/client-address.ts), read when the call starts. */
export const CLIENT_ADDRESS = createContextKey<string>(UNKNOWN_ADDRESS, {
  description: "client address",
});

/**
 * A call's values from its request, as connect-node's `contextValues` option
 * takes them (the unary fast path builds them the same way).
 */
export function callValuesOf(clientAddressOf: ClientAddressOf) {
  return (req: HttpRequest): ContextValues =>
    createContextValues().set(CLIENT_ADDRESS, clientAddressOf(req));
}

/** Sets every header of a record on the call's response. */
export function setResponseHeaders(context: CallHeaders, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) context.responseHeader.set(name, value);
}

/**
 * RPC: a DPoP proof comes in the request's `dpop` field or the `DPoP` header.
 * Both at once are two proofs, which RFC 9449 §4.3 check 1 refuses.
 */
export function dpopProofsOf(field: string, header: string | null): string | string[] | undefined {
  if (field !== "" && header !== null) return [field, header];
  return field !== "" ? field : (header ?? undefined);
}

/** The client-authentication fields of the RPCs that authenticate a client. */
export interface CredentialFields {
  clientId: string;
  clientSecret: string;
  clientAssertion: string;
  clientAssertionType: string;
}

/** The RPC's client credentials: its fields, or `Authorization: Basic` (client_secret_basic). */
export function clientCredentialsOf(
  request: CredentialFields,
  context: CallHeaders,
): ClientCredentials {
  return {
    clientId: wireString(request.clientId),
    clientSecret: wireString(request.clientSecret),
    clientAssertion: wireString(request.clientAssertion),
    clientAssertionType: wireString(request.clientAssertionType),
    authorization: context.requestHeader.get("authorization") ?? undefined,
  };
}

/** The CORS headers that allow a call's `Origin` for the client it authenticated (none when not listed). */
export type CorsForClient = (
  context: CallHeaders,
  client: RegisteredClient,
) => Record<string, string>;
