/**
 * The internal API (SPEC §2): with INTERNAL_PORT set, token.v1.MfaTokenService
 * is served only on that listener (with health and reflection) and the
 * public port answers its paths as unknown routes and leaves it out of its
 * reflection; refused internal keys drain the caller's address bucket (one
 * address locked out, even with the right key, while another address's
 * calls work) and are `internal_key_refused` events that never hold the key;
 * the service as operators run it prints the internal port, and
 * `token-service users reset|unlock|delete` calls it; production refuses a
 * weak key at start-up and in `config check`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, createClient } from "@connectrpc/connect";
import { grpcHealthV1, grpcReflectionV1, MfaService, MfaTokenService } from "@token-service/client";
import { transportFor } from "../support/flows.js";
import { assertRpcError } from "../support/oauth-assertions.js";
import { runBin, runMain } from "../support/run-process.js";
import { type ServiceProcess, startServiceProcess } from "../support/service-process.js";
import {
  CLIENTS,
  FIXTURE_CLIENTS_FILE,
  startTestService,
  TEST_INTERNAL_API_KEY,
  TEST_SECRETS_KEY,
  type TestService,
} from "../support/test-service.js";

const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
const RIGHT = bearer(TEST_INTERNAL_API_KEY);
const WRONG_KEY = "guess-0123456789-abcdefghijklmnop";

async function listServices(baseUrl: string): Promise<string[]> {
  const client = createClient(grpcReflectionV1.ServerReflection, transportFor(baseUrl, "grpc"));
  async function* send() {
    yield { messageRequest: { case: "listServices" as const, value: "" } };
  }
  for await (const response of client.serverReflectionInfo(send())) {
    if (response.messageResponse.case === "listServicesResponse") {
      return response.messageResponse.value.service.map((s) => s.name).sort();
    }
  }
  return [];
}

describe("INTERNAL_PORT: MfaTokenService only on the internal listener", () => {
  let service: TestService;
  let internalUrl: string;
  before(async () => {
    service = await startTestService({ env: { INTERNAL_PORT: "0" } });
    internalUrl = service.internalUrl ?? assert.fail("no internal listener");
  });
  after(() => service.close());

  it("the public port answers its paths as unknown: Connect 404 (row 19), gRPC Unimplemented", async () => {
    const res = await fetch(`${service.baseUrl}/token.v1.MfaTokenService/IssueMfaToken`, {
      method: "POST",
      headers: { "content-type": "application/json", ...RIGHT.headers },
      body: JSON.stringify({ userId: "u", clientId: CLIENTS.post.id }),
    });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: "not_found", error_description: "Not found" });
    for (const method of [
      "issueMfaToken",
      "resetUserMfa",
      "unlockUser",
      "deleteUserData",
    ] as const) {
      const client = createClient(MfaTokenService, transportFor(service.baseUrl, "grpc"));
      const call = (client[method] as (r: object, o: object) => Promise<unknown>)(
        { userId: "u", clientId: CLIENTS.post.id },
        RIGHT,
      );
      await assert.rejects(call, (error: { code?: Code }) => error.code === Code.Unimplemented);
    }
  });

  it("the public reflection and health leave it out; the internal ones list it alone", async () => {
    const publicServices = await listServices(service.baseUrl);
    assert.ok(!publicServices.includes("token.v1.MfaTokenService"), publicServices.join());
    assert.ok(publicServices.includes("token.v1.TokenService"));
    assert.deepEqual(await listServices(internalUrl), [
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "token.v1.MfaTokenService",
    ]);
    const health = (url: string) =>
      createClient(grpcHealthV1.Health, transportFor(url, "grpc")).check({
        service: "token.v1.MfaTokenService",
      });
    await assert.rejects(health(service.baseUrl), (e: { code?: Code }) => e.code === Code.NotFound);
    assert.equal(
      (await health(internalUrl)).status,
      grpcHealthV1.HealthCheckResponse_ServingStatus.SERVING,
    );
    assert.equal((await fetch(`${internalUrl}/readyz`)).status, 200);
  });

  for (const protocol of ["connect-h1", "grpc"] as const) {
    it(`the internal listener serves every MfaTokenService RPC over ${protocol}, nothing else`, async () => {
      const client = createClient(MfaTokenService, transportFor(internalUrl, protocol));
      const issued = await client.issueMfaToken(
        { userId: `internal-${protocol}`, clientId: CLIENTS.post.id, scope: "openid" },
        RIGHT,
      );
      assert.equal(issued.mfaRequirements?.enroll.length, 1);
      const reset = await client.resetUserMfa({ userId: `internal-${protocol}` }, RIGHT);
      assert.equal(reset.authenticatorsRemoved, 0);
      await client.unlockUser({ userId: `internal-${protocol}` }, RIGHT);
      await client.deleteUserData({ userId: `internal-${protocol}` }, RIGHT);
      assert.equal((await client.revokeUserSessions({ userId: "x" }, RIGHT)).revoked, 0);
      // The public services are not here.
      const mfa = createClient(MfaService, transportFor(internalUrl, protocol));
      // (A Connect client reads the 404 of an unknown path as Unimplemented too.)
      await assert.rejects(
        mfa.listAuthenticators({ mfaToken: issued.mfaToken }),
        (e: { code?: Code }) => e.code === Code.Unimplemented,
      );
    });
  }
});

describe("refused internal keys drain the caller's address bucket", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({
      env: {
        INTERNAL_PORT: "0",
        ADDRESS_THROTTLING: "true",
        ADDRESS_MAX_FAILURES: "3",
        ADDRESS_FAILURE_REFILL_SECONDS: "60",
        TRUST_PROXY: "1",
      },
    });
  });
  after(() => service.close());

  const from = (address: string, key: string) => ({
    headers: { authorization: `Bearer ${key}`, "x-forwarded-for": address },
  });

  for (const protocol of ["connect-h1", "grpc"] as const) {
    it(`over ${protocol}: 3 guesses from one address, then even the right key waits; another address works`, async () => {
      const client = createClient(
        MfaTokenService,
        transportFor(service.internalUrl ?? "", protocol),
      );
      const guesser = protocol === "grpc" ? "198.51.100.7" : "198.51.100.8";
      const logsBefore = service.logs.length;
      for (let i = 0; i < 3; i++) {
        await assertRpcError(
          client.unlockUser({ userId: "victim" }, from(guesser, WRONG_KEY)),
          Code.Unauthenticated,
          "access_denied",
          "Unauthorized",
        );
      }
      for (const key of [WRONG_KEY, TEST_INTERNAL_API_KEY]) {
        const metadata = await assertRpcError(
          client.resetUserMfa({ userId: "victim" }, from(guesser, key)),
          Code.ResourceExhausted,
          "too_many_attempts",
          "Too many failed attempts. Try again later.",
          60,
        );
        if (protocol === "connect-h1") assert.equal(metadata.get("retry-after"), "60");
      }
      // Another address, the right key: served.
      const reset = await client.resetUserMfa(
        { userId: "victim" },
        from("203.0.113.9", TEST_INTERNAL_API_KEY),
      );
      assert.equal(reset.authenticatorsRemoved, 0);
      // After one refill period the guesser's bucket holds one attempt again.
      service.clock.advance(60_000);
      await client.unlockUser({ userId: "victim" }, from(guesser, TEST_INTERNAL_API_KEY));

      const events = service.logs
        .slice(logsBefore)
        .filter((line) => line.includes('"event":"internal_key_refused"'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.deepEqual(
        events.map((e) => [e.rpc, e.outcome, e.retry_after_seconds]),
        [
          ["UnlockUser", "refused", undefined],
          ["UnlockUser", "refused", undefined],
          ["UnlockUser", "refused", undefined],
          ["ResetUserMfa", "locked", 60],
          ["ResetUserMfa", "locked", 60],
        ],
      );
      for (const event of events) {
        assert.equal(event.security, true);
        assert.equal(event.address_network, `${guesser.slice(0, guesser.lastIndexOf("."))}.0/24`);
        assert.equal(typeof event.address_id, "string");
      }
      assert.ok(!service.logs.some((line) => line.includes(WRONG_KEY)), "the key is never logged");
    });
  }
});

describe("the service as operators run it, and token-service users", () => {
  let proc: ServiceProcess;
  let internalUrl: string;
  before(async () => {
    proc = await startServiceProcess({
      INTERNAL_PORT: "0",
      MANAGEMENT_PORT: "0",
      INTERNAL_API_KEY: TEST_INTERNAL_API_KEY,
      SECRETS_KEY: TEST_SECRETS_KEY,
      CLIENTS_FILE: FIXTURE_CLIENTS_FILE,
    });
    assert.equal(typeof proc.internalPort, "number");
    internalUrl = `http://127.0.0.1:${proc.internalPort}`;
  });
  after(() => proc.stop());

  /** A user with a pending authenticator, enrolled on the running process. */
  async function pendingUser(userId: string): Promise<void> {
    const issued = await createClient(
      MfaTokenService,
      transportFor(internalUrl, "connect-h1"),
    ).issueMfaToken({ userId, clientId: CLIENTS.post.id, scope: "openid" }, RIGHT);
    await createClient(MfaService, transportFor(proc.baseUrl, "connect-h1")).associate({
      mfaToken: issued.mfaToken,
      authenticatorTypes: ["otp"],
    });
  }
  const env = { INTERNAL_API_KEY: TEST_INTERNAL_API_KEY };

  it("users reset: one line with the counts, and the user_mfa_reset event", async () => {
    await pendingUser("cli-reset|1");
    const result = await runBin(["users", "reset", "cli-reset|1", "--url", internalUrl], env);
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(
      result.stdout,
      'user "cli-reset|1": 1 authenticator removed, 0 sessions revoked\n',
    );
    const event = await proc.waitForLine((l) => l.event === "user_mfa_reset");
    assert.equal(event.user_id, "cli-reset|1");
    assert.equal(event.authenticators_removed, 1);
  });

  it("users unlock and users delete, reached through INTERNAL_HOST/INTERNAL_PORT", async () => {
    await pendingUser("cli-delete");
    const internalEnv = { ...env, INTERNAL_PORT: String(proc.internalPort) };
    const unlocked = await runBin(["users", "unlock", "cli-delete"], internalEnv);
    assert.deepEqual(
      [unlocked.code, unlocked.stdout, unlocked.stderr],
      [0, 'user "cli-delete" unlocked\n', ""],
    );
    const deleted = await runBin(["users", "delete", "cli-delete"], internalEnv);
    assert.deepEqual(
      [deleted.code, deleted.stdout, deleted.stderr],
      [0, 'user "cli-delete": every record deleted\n', ""],
    );
    await proc.waitForLine((l) => l.event === "user_data_deleted" && l.user_id === "cli-delete");
    const again = await runBin(["users", "reset", "cli-delete", "--url", internalUrl], env);
    assert.equal(again.stdout, 'user "cli-delete": 0 authenticators removed, 0 sessions revoked\n');
  });

  it("refusals are one line naming the command: a wrong key, the public port, no key, no user", async () => {
    const wrong = await runBin(["users", "unlock", "u", "--url", internalUrl], {
      INTERNAL_API_KEY: WRONG_KEY,
    });
    assert.equal(wrong.code, 1);
    assert.equal(
      wrong.stderr,
      'token-service: users unlock: the service refused: Unauthenticated: access_denied "Unauthorized" (is INTERNAL_API_KEY the service\'s?)\n',
    );
    const publicPort = await runBin(["users", "delete", "u", "--url", proc.baseUrl], env);
    assert.equal(publicPort.code, 1);
    assert.match(
      publicPort.stderr,
      /^token-service: users delete: cannot reach the service's internal API at http:\/\/127\.0\.0\.1:\d+ \(Unimplemented: /,
    );
    const noKey = await runBin(["users", "reset", "u", "--url", internalUrl], {});
    assert.deepEqual(
      [noKey.code, noKey.stderr],
      [
        78,
        "token-service: users reset: INTERNAL_API_KEY is not set: the service's internal API needs it\n",
      ],
    );
    const help = await runBin(["users", "delete", "--help"], {});
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: token-service users delete <user_id> \[--url <url>\]\n/);
    assert.match(help.stdout, /token\.v1\.MfaTokenService\/DeleteUserData/);
    const noUser = await runBin(["users", "reset"], env);
    assert.deepEqual(
      [noUser.code, noUser.stderr],
      [
        64,
        "token-service: users reset: one user_id is required (see token-service users reset --help)\n",
      ],
    );
  });
});

describe("config check names the internal listener", () => {
  it("INTERNAL_PORT and INTERNAL_HOST appear in the summary line", async () => {
    const checked = await runBin(["config", "check"], {
      INTERNAL_PORT: "9090",
      INTERNAL_HOST: "10.0.3.7",
    });
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(
      checked.stdout,
      /, listening on 127\.0\.0\.1:8080, internal API \(MfaTokenService\) on 10\.0\.3\.7:9090, 1 worker,/,
    );
  });
});

describe("production refuses a weak INTERNAL_API_KEY", () => {
  const WEAK =
    "INTERNAL_API_KEY is too weak for NODE_ENV=production: it needs at least 32 characters and at least 8 distinct ones (generate one with `token-service internal-api-key`)";
  const env = {
    NODE_ENV: "production",
    ISSUER_URL: "http://localhost:8080/",
    REDIS_URL: "redis://127.0.0.1:1",
    SECRETS_KEY: TEST_SECRETS_KEY,
    CLIENTS_FILE: FIXTURE_CLIENTS_FILE,
    SIGNING_KEYS_FILE: "/nonexistent/keys.json",
    INTERNAL_API_KEY: "a".repeat(40),
  };

  it("config check and the service print the same line among the problems (exit 78)", async () => {
    const checked = await runBin(["config", "check"], env);
    assert.equal(checked.code, 78);
    assert.ok(checked.stderr.includes(`  - ${WEAK}\n`), checked.stderr);
    assert.ok(!checked.stderr.includes("a".repeat(40)));
    const started = await runMain(env);
    assert.equal(started.code, 78);
    assert.equal(started.stderr, checked.stderr);
  });
});
