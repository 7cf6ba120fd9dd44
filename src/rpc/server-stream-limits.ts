import { Code, ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import { throttledNetwork } from "../util/ip-address.js";
import { CLIENT_ADDRESS } from "./call-headers.js";
import { FAST_PATH_WRAPPER, type WrappingInterceptor } from "./oauth-error-interceptor.js";

export interface ServerStreamLimitOptions {
  /** Server streams open at once in the process (MAX_WATCH_STREAMS). */
  maxOpen: number;
  /** Server streams of one client address (an IPv6 client's /64); 0: no per-address share. */
  maxOpenPerAddress: number;
  /** A stream ends (status OK) this long after it started (WATCH_MAX_SECONDS). */
  maxMs: number;
}

export interface ServerStreamLimits {
  /** For the router; unary calls (the fast path's too) pass through untouched. */
  interceptor: WrappingInterceptor;
  /** Server streams open now. */
  open(): number;
  readonly counts: { refused: number; ended: number };
}

/**
 * Long-lived server streams, bounded (SPEC §6): every server-streaming call —
 * today grpc.health.v1.Health/Watch, and any added later, since this is an
 * interceptor on the whole router — counts against one budget per process
 * and one share per client address; a call beyond either is refused with
 * ResourceExhausted before its handler runs. A stream ends with status OK
 * once `maxMs` have passed: the health-checking protocol's clients re-open a
 * Watch that ends, so a connection can never be pinned for longer, and a
 * budget slot is never held longer. Client and bidi streams are not counted:
 * their request must end within HTTP_REQUEST_TIMEOUT_SECONDS.
 */
export function createServerStreamLimits(options: ServerStreamLimitOptions): ServerStreamLimits {
  const { maxOpen, maxOpenPerAddress, maxMs } = options;
  const byAddress = new Map<string, number>();
  const counts = { refused: 0, ended: 0 };
  let open = 0;

  const interceptor: Interceptor = (next) => async (req) => {
    if (req.method.methodKind !== "server_streaming") return next(req);
    const address = throttledNetwork(req.contextValues.get(CLIENT_ADDRESS));
    const mine = byAddress.get(address) ?? 0;
    if (open >= maxOpen || (maxOpenPerAddress > 0 && mine >= maxOpenPerAddress)) {
      counts.refused += 1;
      throw new ConnectError("too many open streams, retry later", Code.ResourceExhausted);
    }
    open += 1;
    byAddress.set(address, mine + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      open -= 1;
      const left = (byAddress.get(address) ?? 1) - 1;
      if (left === 0) byAddress.delete(address);
      else byAddress.set(address, left);
    };
    // Whatever happens to the stream, its end (or the client leaving) aborts the
    // call's signal: the slot is given back even if the messages are never read.
    req.signal.addEventListener("abort", release, { once: true });
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (error) {
      release();
      throw error;
    }
    if (!res.stream) {
      release();
      return res;
    }
    const message = bounded(res.message, req.signal, maxMs, release, () => {
      counts.ended += 1;
    });
    return { ...res, message } as StreamResponse;
  };

  return {
    interceptor: Object.assign(interceptor, { [FAST_PATH_WRAPPER]: passThrough }),
    open: () => open,
    counts,
  };
}

/** The unary fast path serves unary calls only: nothing to bound. */
function passThrough<T>(_route: string, call: () => Promise<T>): Promise<T> {
  return call();
}

const DONE = { done: true, value: undefined } as const;

/**
 * The handler's messages until they end, the call is cancelled or `maxMs`
 * pass. On the deadline the handler is left waiting (an async generator
 * cannot be stopped while it awaits); it ends when the finished response
 * closes the stream and aborts the call's signal.
 */
async function* bounded<T>(
  messages: AsyncIterable<T>,
  signal: AbortSignal,
  maxMs: number,
  release: () => void,
  onDeadline: () => void,
): AsyncGenerator<T> {
  const iterator = messages[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<typeof DONE>((resolve) => {
    timer = setTimeout(() => {
      onDeadline();
      resolve(DONE);
    }, maxMs).unref();
    onAbort = () => resolve(DONE);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), stop]);
      if (next.done === true) return;
      yield next.value;
    }
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
    release();
    void iterator.return?.()?.catch(() => {});
  }
}
