import { AsyncLocalStorage } from "node:async_hooks";

/**
 * The request being served, for every log line written while serving it
 * (SPEC §4: security events, warnings and errors carry the request's
 * `request_id`, so they join the access line). The request observer runs
 * the handler inside `runWithRequestId`; the logger's mixin reads
 * `currentRequestId` for each line. Lines written outside a request (start-up,
 * background sweeps) carry none.
 */
const requestIds = new AsyncLocalStorage<string>();

export function runWithRequestId<A extends unknown[]>(
  requestId: string,
  handler: (...args: A) => void,
  ...args: A
): void {
  requestIds.run(requestId, handler, ...args);
}

/**
 * Runs `fn` in the request's scope and returns what it returns: for code that
 * the request's scope does not reach by itself (the unary RPC fast path gets
 * the body through stream callbacks, which run in the socket's context).
 */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  return requestIds.run(requestId, fn);
}

export function currentRequestId(): string | undefined {
  return requestIds.getStore();
}
