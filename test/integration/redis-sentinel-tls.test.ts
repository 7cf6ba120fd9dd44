// Redis Sentinel with passwords and TLS (SPEC §7 "Sentinel"; docs/operations.md "Redis
// Sentinel"): the service finds the master through a Sentinel that speaks only TLS and
// asks for a password, and reaches the master over TLS with its password, trusting the
// private CA of REDIS_TLS_CA_FILE; without that CA the certificate is refused and the
// store stays unavailable (503, nothing written).

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { userKeys } from "../../src/store/redis-keys.js";
import { enrolledUser } from "../support/flows.js";
import { spawnRedisServer, spawnSentinel, type TlsFiles } from "../support/redis-process.js";
import { startTestService } from "../support/test-service.js";
import { opensslSkipReason, selfSignedCertificate } from "../support/tls-proxy.js";

const NAME = "token-service-tls";
const REDIS_PASSWORD = "redis-password-for-the-tls-suite";
const SENTINEL_PASSWORD = "sentinel-password-for-the-tls-suite";

describe("Redis Sentinel with passwords and TLS", async () => {
  const skip = await opensslSkipReason();

  test("the service finds the master and writes to it; an untrusted certificate is refused", {
    skip,
  }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "token-service-redis-tls-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const { key, cert } = await selfSignedCertificate();
    const tls: TlsFiles = {
      certFile: join(dir, "cert.pem"),
      keyFile: join(dir, "key.pem"),
      caFile: join(dir, "cert.pem"),
      ca: cert.toString(),
    };
    await writeFile(tls.certFile, cert);
    await writeFile(tls.keyFile, key);

    const master = await spawnRedisServer({ password: REDIS_PASSWORD, tls });
    t.after(() => master.kill());
    const sentinel = await spawnSentinel({
      name: NAME,
      master: { host: "127.0.0.1", port: master.port },
      quorum: 1,
      masterPassword: REDIS_PASSWORD,
      password: SENTINEL_PASSWORD,
      downAfterMs: 5000,
      failoverTimeoutMs: 60_000,
      tls,
    });
    t.after(() => sentinel.kill());
    const env = {
      REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`,
      REDIS_SENTINEL_NAME: NAME,
      REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
      REDIS_PASSWORD,
      REDIS_SENTINEL_TLS: "true",
      REDIS_TLS: "true",
    };
    const service = await startTestService({
      store: "config",
      env: { ...env, REDIS_TLS_CA_FILE: tls.caFile },
    });
    t.after(() => service.close());

    const { userId } = await enrolledUser(service);
    assert.equal(await master.command("EXISTS", userKeys(userId).otp), 1);

    // The same deployment without the private CA: the certificate is not trusted.
    const untrusting = await startTestService({ store: "config", env });
    t.after(() => untrusting.close());
    const ready = await fetch(`${untrusting.baseUrl}/readyz`);
    await ready.arrayBuffer();
    assert.equal(ready.status, 503);
    assert.match(ready.headers.get("retry-after") ?? "", /^\d+$/);
  });
});
