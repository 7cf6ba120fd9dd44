/**
 * Per-address throttling on the wire: wrong codes of many users from one
 * client address drain that address's bucket, on every surface (REST, the
 * RPC fast path and connect-es); then every code from it is row 8. The
 * client address is the socket's peer unless TRUST_PROXY names proxy hops
 * (then X-Forwarded-For's entry that many hops from the right), or
 * auth0-forwarded-for from a confidential client when enabled. Off unless
 * ADDRESS_THROTTLING (or NODE_ENV=production) turns it on.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { MfaTokenService } from "@token-service/client";
import {
  associate,
  clientsFor,
  codeAt,
  internalAuth,
  otpGrantParams,
  otpRpcRequest,
  type Protocol,
  postTokenForm,
  postTokenH2c,
  recoveryGrantParams,
  uniqueUserId,
  wrongCode,
} from "../support/flows.js";
import { assertLocked, assertOAuthError, assertRpcError } from "../support/oauth-assertions.js";
import { CLIENTS, startTestService, type TestService } from "../support/test-service.js";

const LOCKED = "Too many failed attempts. Try again later.";

/**
 * An mfa_token as the first-factor service asks for it, from its own address
 * (127.0.0.2): internal calls share the per-address bucket that wrong codes
 * drain (SPEC §2), and the users' codes here come from 127.0.0.1.
 */
async function issueFromBackend(service: TestService, userId: string, clientId: string) {
  const transport = createConnectTransport({
    baseUrl: service.baseUrl,
    httpVersion: "1.1",
    nodeOptions: { localAddress: "127.0.0.2" },
  });
  const issued = await createClient(MfaTokenService, transport).issueMfaToken(
    { userId, clientId, audience: "https://api.example.test", scope: "openid profile" },
    internalAuth,
  );
  return issued.mfaToken;
}

/** A user with a pending authenticator and a live mfa_token of `clientId`. */
async function pendingUser(service: TestService, clientId: string = CLIENTS.post.id) {
  const userId = uniqueUserId("addr");
  const secret = await associate(service, await issueFromBackend(service, userId, clientId));
  const mfaToken = await issueFromBackend(service, userId, clientId);
  return { userId, secret, mfaToken };
}

/** One wrong code from a new user over `surface`, answered with row 9. */
async function wrongCodeOfNewUser(
  service: TestService,
  surface: "rest" | "rest-h2c" | Protocol,
  headers: Record<string, string> = {},
) {
  const user = await pendingUser(service);
  const otp = wrongCode(service, user.secret);
  if (surface === "rest" || surface === "rest-h2c") {
    const params = otpGrantParams(user.mfaToken, otp);
    const result =
      surface === "rest"
        ? await postTokenForm(service, params, headers)
        : await postTokenH2c(service, params, "form", headers);
    assertOAuthError(result, 400, "invalid_grant", "Invalid otp_code.");
    return;
  }
  await assertRpcError(
    clientsFor(service, surface).token.verifyMfaOtp(otpRpcRequest(user.mfaToken, otp), {
      headers,
    }),
    Code.FailedPrecondition,
    "invalid_grant",
    "Invalid otp_code.",
  );
}

/**
 * The status of a new user's right code (REST), with `headers`. The code of
 * the clock's current step: a new user has none accepted yet, and the clock
 * stays put, so no bucket refills between the calls of a test.
 */
async function rightCodeStatus(service: TestService, headers: Record<string, string> = {}) {
  const user = await pendingUser(service);
  const result = await postTokenForm(
    service,
    otpGrantParams(user.mfaToken, codeAt(service, user.secret)),
    headers,
  );
  return result.status;
}

/** The parsed security-event lines named `event`. */
function eventsOf(service: TestService, event: string): Record<string, unknown>[] {
  return service.logs
    .filter((line) => line.includes(`"event":"${event}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("per-address throttling on (ADDRESS_THROTTLING=true)", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({
      env: { ADDRESS_THROTTLING: "true", ADDRESS_MAX_FAILURES: "6" },
    });
  });
  after(() => service.close());

  test("6 wrong codes of 6 users over REST and RPC: the next user's right code is row 8, on every surface", async () => {
    // Each surface takes from the same bucket: REST (HTTP/1.1 and h2c), the
    // RPC fast path (Connect JSON and binary, gRPC) and connect-es (gRPC-Web).
    const [fastPath] = service.app.rpcFastPaths;
    const servedBefore = fastPath?.counts.served ?? 0;
    for (const surface of [
      "rest",
      "rest-h2c",
      "connect-h1",
      "connect-h1-binary",
      "grpc",
      "grpc-web",
    ] as const) {
      await wrongCodeOfNewUser(service, surface);
    }

    assert.equal((fastPath?.counts.served ?? 0) - servedBefore, 3, "three on the fast path");

    const next = await pendingUser(service);
    const code = codeAt(service, next.secret);
    assertLocked(await postTokenForm(service, otpGrantParams(next.mfaToken, code)), "36");
    for (const protocol of ["connect-h1", "grpc", "grpc-web"] as const) {
      await assertRpcError(
        clientsFor(service, protocol).token.verifyMfaOtp(otpRpcRequest(next.mfaToken, code)),
        Code.ResourceExhausted,
        "too_many_attempts",
        LOCKED,
        36,
      );
    }
    // A recovery code from that address is refused too.
    const recovery = await pendingUser(service);
    assertLocked(
      await postTokenForm(service, recoveryGrantParams(recovery.mfaToken, "WRONGCODE")),
      "36",
    );

    // Logged as address_locked_out, the address named by a keyed hash and its /24 only.
    const [event] = eventsOf(service, "address_locked_out");
    assert.ok(event, "an address_locked_out event");
    assert.equal(event.user_id, next.userId);
    assert.equal(event.client_id, CLIENTS.post.id);
    assert.equal(event.outcome, "refused");
    assert.equal(event.retry_after_seconds, 36);
    assert.equal(event.address_network, "127.0.0.0/24");
    assert.match(String(event.address_id), /^[A-Za-z0-9_-]{22}$/);
    const lines = service.logs.filter((line) => line.includes("address_locked_out"));
    assert.ok(
      lines.every((line) => !line.includes("127.0.0.1")),
      "no full address logged",
    );
    // The user's own bucket is not empty: no user_locked_out.
    assert.deepEqual(eventsOf(service, "user_locked_out"), []);

    // One attempt is back after ADDRESS_FAILURE_REFILL_SECONDS (36).
    service.clock.advance(36_000);
    assert.equal(await rightCodeStatus(service), 200);
  });
});

describe("TRUST_PROXY=0 (the default): X-Forwarded-For is ignored", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({
      env: { ADDRESS_THROTTLING: "true", ADDRESS_MAX_FAILURES: "3" },
    });
  });
  after(() => service.close());

  test("wrong codes under three forwarded addresses all drain the socket address's bucket", async () => {
    await wrongCodeOfNewUser(service, "rest", { "x-forwarded-for": "198.51.100.1" });
    await wrongCodeOfNewUser(service, "grpc", { "x-forwarded-for": "198.51.100.2" });
    await wrongCodeOfNewUser(service, "connect-h1", { "x-forwarded-for": "198.51.100.3" });
    assert.equal(await rightCodeStatus(service, { "x-forwarded-for": "198.51.100.4" }), 429);
  });
});

describe("TRUST_PROXY=1: the last X-Forwarded-For entry is the client", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({
      env: { ADDRESS_THROTTLING: "true", ADDRESS_MAX_FAILURES: "3", TRUST_PROXY: "1" },
    });
  });
  after(() => service.close());

  test("two forwarded addresses have two buckets; an entry the client prepended is ignored", async () => {
    const drained = { "x-forwarded-for": "198.51.100.1" };
    await wrongCodeOfNewUser(service, "rest", drained);
    await wrongCodeOfNewUser(service, "grpc", drained);
    await wrongCodeOfNewUser(service, "grpc-web", drained);
    assert.equal(await rightCodeStatus(service, drained), 429);
    // Another address behind the same proxy (the same socket peer) is not throttled.
    assert.equal(await rightCodeStatus(service, { "x-forwarded-for": "198.51.100.2" }), 200);
    // A client that writes its own entry first still gets the one the proxy appended.
    assert.equal(
      await rightCodeStatus(service, { "x-forwarded-for": "198.51.100.2, 198.51.100.1" }),
      429,
    );
    // IPv4-mapped and plain IPv4 are one address.
    assert.equal(await rightCodeStatus(service, { "x-forwarded-for": "::ffff:198.51.100.1" }), 429);
    // No header: the proxy's own address, whose bucket is full.
    assert.equal(await rightCodeStatus(service), 200);
  });
});

describe("auth0-forwarded-for", () => {
  /** Three wrong codes and a right one of public-client users, with `headers`. */
  const publicClientTries = async (service: TestService, headers: Record<string, string>) => {
    for (let i = 0; i < 3; i++) {
      const user = await pendingUser(service, CLIENTS.public.id);
      const result = await postTokenForm(
        service,
        {
          grant_type: "http://auth0.com/oauth/grant-type/mfa-otp",
          client_id: CLIENTS.public.id,
          mfa_token: user.mfaToken,
          otp: wrongCode(service, user.secret),
        },
        headers,
      );
      assertOAuthError(result, 400, "invalid_grant", "Invalid otp_code.");
    }
  };

  describe("TRUST_AUTH0_FORWARDED_FOR=true", () => {
    let service: TestService;
    before(async () => {
      service = await startTestService({
        env: {
          ADDRESS_THROTTLING: "true",
          ADDRESS_MAX_FAILURES: "3",
          TRUST_AUTH0_FORWARDED_FOR: "true",
        },
      });
    });
    after(() => service.close());

    test("honoured from a confidential client (REST and RPC): one bucket per forwarded address", async () => {
      const drained = { "auth0-forwarded-for": "198.51.100.7" };
      await wrongCodeOfNewUser(service, "rest", drained);
      await wrongCodeOfNewUser(service, "grpc", drained);
      await wrongCodeOfNewUser(service, "connect-h1", drained);
      assert.equal(await rightCodeStatus(service, drained), 429);
      assert.equal(await rightCodeStatus(service, { "auth0-forwarded-for": "198.51.100.8" }), 200);
      // The confidential client's own address was not charged.
      assert.equal(await rightCodeStatus(service), 200);
    });

    test("never from a public client: its failures drain its own address's bucket", async () => {
      await publicClientTries(service, { "auth0-forwarded-for": "198.51.100.9" });
      // 198.51.100.9 was not charged; the socket address was.
      assert.equal(await rightCodeStatus(service, { "auth0-forwarded-for": "198.51.100.9" }), 200);
      assert.equal(await rightCodeStatus(service), 429);
    });
  });

  describe("TRUST_AUTH0_FORWARDED_FOR unset (the default)", () => {
    let service: TestService;
    before(async () => {
      service = await startTestService({
        env: { ADDRESS_THROTTLING: "true", ADDRESS_MAX_FAILURES: "3" },
      });
    });
    after(() => service.close());

    test("ignored even from a confidential client", async () => {
      await wrongCodeOfNewUser(service, "rest", { "auth0-forwarded-for": "198.51.100.11" });
      await wrongCodeOfNewUser(service, "grpc", { "auth0-forwarded-for": "198.51.100.12" });
      await wrongCodeOfNewUser(service, "rest", { "auth0-forwarded-for": "198.51.100.13" });
      assert.equal(await rightCodeStatus(service, { "auth0-forwarded-for": "198.51.100.14" }), 429);
    });
  });
});

describe("the embedded default: off", () => {
  let service: TestService;
  before(async () => {
    // A capacity that would lock at once, were throttling on.
    service = await startTestService({ env: { ADDRESS_MAX_FAILURES: "1" } });
  });
  after(() => service.close());

  test("wrong codes of many users from one address leave the next user's right code alone", async () => {
    for (const surface of ["rest", "grpc", "connect-h1"] as const) {
      await wrongCodeOfNewUser(service, surface);
    }
    assert.equal(await rightCodeStatus(service), 200);
    assert.deepEqual(eventsOf(service, "address_locked_out"), []);
  });
});
