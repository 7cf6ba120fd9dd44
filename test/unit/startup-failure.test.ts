// The one line a start-up failure prints (src/startup-failure.ts); the real
// process is run in test/integration/startup-refusals.test.ts.

import assert from "node:assert/strict";
import { test } from "node:test";
import { describeStartupFailure } from "../../src/startup-failure.js";

const listenError = (code: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(`listen ${code}`), { code, syscall: "listen", ...extra });

test("listen errors say where and what to change", () => {
  assert.equal(
    describeStartupFailure(listenError("EACCES", { address: "0.0.0.0", port: 80 })),
    "cannot listen on 0.0.0.0:80: permission denied (EACCES): ports below 1024 need privileges; set PORT to 1024 or above",
  );
  assert.equal(
    describeStartupFailure(
      Object.assign(new Error("getaddrinfo ENOTFOUND nowhere"), {
        code: "ENOTFOUND",
        syscall: "getaddrinfo",
        hostname: "nowhere",
      }),
      { host: "nowhere", port: 8080 },
    ),
    "cannot listen on nowhere:8080: the host name does not resolve (ENOTFOUND): check HOST",
  );
  // A cluster worker's bind error carries no address: the configured one is named.
  assert.equal(
    describeStartupFailure(listenError("EADDRINUSE", { syscall: "bind", address: null }), {
      host: "127.0.0.1",
      port: 8080,
    }),
    "cannot listen on 127.0.0.1:8080: the address is already in use (EADDRINUSE): stop the process listening there or set PORT",
  );
});

test("anything else: its first line, never a stack", () => {
  const error = new Error("store exploded\n    at somewhere (file.ts:1:1)");
  assert.equal(describeStartupFailure(error), "start-up failed: store exploded");
  assert.equal(describeStartupFailure("a string"), "start-up failed: a string");
  assert.equal(describeStartupFailure(listenError("EMFILE")), "start-up failed: listen EMFILE");
});
