import { AsyncLocalStorage } from "node:async_hooks";

/** What code running for a request may ask of it: its id and when it arrived. */
export interface RequestScope {
  readonly requestId: string;
  /** process.hrtime.bigint() when the request arrived (the store deadline counts from it). */
  readonly startNs: bigint;
}

/**
 * The request being served, for every log line written while serving it
 * (SPEC §4: security events, warnings and errors carry the request's
 * `request_id`, so they join the access line) and for the per-request store
 * deadline (store-deadline.ts). The request observer runs the handler inside
 * `runInRequestScope` with the request's access record (no allocation); the
 * logger's mixin reads `currentRequestId` for each line. Lines written
 * outside a request (start-up, background sweeps) carry none.
 */
const scopes = new AsyncLocalStorage<RequestScope>();

export function runInRequestScope<A extends unknown[]>(
  scope: RequestScope,
  handler: (...args: A) => void,
  ...args: A
): void {
  scopes.run(scope, handler, ...args);
}

/**
 * Runs `fn` in the request's scope and returns what it returns: for code that
 * the request's scope does not reach by itself (the unary RPC fast path gets
 * the body through stream callbacks, which run in the socket's context).
 */
export function withRequestScope<T>(scope: RequestScope, fn: () => T): T {
  return scopes.run(scope, fn);
}

export function currentRequestId(): string | undefined {
  return scopes.getStore()?.requestId;
}

/** When the request being served arrived, or undefined outside a request. */
export function currentRequestStartNs(): bigint | undefined {
  return scopes.getStore()?.startNs;
}
