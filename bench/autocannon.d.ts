/** The slice of autocannon 9's API the bench uses (the package ships no types). */
declare module "autocannon" {
  import type { EventEmitter } from "node:events";

  namespace autocannon {
    interface RequestParams {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
    }
    interface Request extends RequestParams {
      /** Called for every request; returns the request to send. */
      setupRequest?: (request: RequestParams, context: object) => RequestParams;
      /**
       * Called with every response, synchronously right before the same
       * connection's next `setupRequest` (lib/httpClient.js).
       */
      onResponse?: (status: number, body: string, context: object) => void;
    }
    interface Options {
      url: string;
      connections?: number;
      /** Seconds. */
      duration?: number;
      /** Total requests (instead of a duration). */
      amount?: number;
      method?: string;
      headers?: Record<string, string>;
      requests?: Request[];
      /** Seconds before a request counts as timed out. */
      timeout?: number;
    }
    interface Result {
      duration: number;
      errors: number;
      timeouts: number;
    }
    interface Instance extends EventEmitter {
      stop(): void;
    }
  }
  function autocannon(
    options: autocannon.Options,
    callback: (error: Error | null, result: autocannon.Result) => void,
  ): autocannon.Instance;
  export = autocannon;
}
