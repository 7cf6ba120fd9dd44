// The client address: the socket's peer, X-Forwarded-For only through
// TRUST_PROXY hops, auth0-forwarded-for only from confidential clients when
// enabled; canonical forms, IPv6 throttled per /64, logs naming a network.
// (On the wire, every surface: test/integration/address-throttling.test.ts.)

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { createAddressThrottle } from "../../src/oauth/address-throttle.js";
import type { RegisteredClient } from "../../src/oauth/client-registry.js";
import { createClientAddressOf } from "../../src/server/client-address.js";
import type { HttpRequest } from "../../src/server/http-types.js";
import { canonicalIp, logNetwork, throttledNetwork } from "../../src/util/ip-address.js";

const request = (remoteAddress: string | undefined, xff?: string | string[]) =>
  ({
    socket: { remoteAddress },
    headers: xff === undefined ? {} : { "x-forwarded-for": xff },
  }) as unknown as HttpRequest;

describe("createClientAddressOf (TRUST_PROXY hops)", () => {
  test("0 hops: the socket's peer; X-Forwarded-For is ignored", () => {
    const of = createClientAddressOf(0);
    assert.equal(of(request("203.0.113.7")), "203.0.113.7");
    assert.equal(of(request("203.0.113.7", "198.51.100.1")), "203.0.113.7");
    assert.equal(of(request("::ffff:203.0.113.7", "198.51.100.1")), "203.0.113.7");
  });

  test("1 hop: the last entry (the one the proxy wrote); entries the client wrote are not believed", () => {
    const of = createClientAddressOf(1);
    assert.equal(of(request("10.0.0.2", "198.51.100.1")), "198.51.100.1");
    assert.equal(of(request("10.0.0.2", "192.0.2.66, 198.51.100.1")), "198.51.100.1");
    assert.equal(of(request("10.0.0.2", ["192.0.2.66", "198.51.100.1"])), "198.51.100.1");
    assert.equal(of(request("10.0.0.2", " [2001:DB8::1]:5000 ")), "2001:db8::1");
    // No header: the proxy's own address (requests reaching the service directly).
    assert.equal(of(request("10.0.0.2")), "10.0.0.2");
    assert.equal(of(request("10.0.0.2", " , ")), "10.0.0.2");
  });

  test("2 hops: the second entry from the right; fewer entries: the leftmost", () => {
    const of = createClientAddressOf(2);
    assert.equal(of(request("10.0.0.3", "192.0.2.66, 198.51.100.1, 10.0.0.2")), "198.51.100.1");
    assert.equal(of(request("10.0.0.3", "198.51.100.1")), "198.51.100.1");
  });

  test("an entry that is no IP address is used as written (cut to 64 characters)", () => {
    const of = createClientAddressOf(1);
    assert.equal(of(request("10.0.0.2", "unknown")), "unknown");
    assert.equal(of(request("10.0.0.2", "x".repeat(100))), "x".repeat(64));
  });

  test("a socket whose peer cannot be read counts as one 'unknown' address", () => {
    assert.equal(createClientAddressOf(0)(request(undefined)), "unknown");
  });
});

describe("IP address text", () => {
  test("canonical forms: IPv4-mapped as IPv4, RFC 5952 IPv6, ports, brackets and zones dropped", () => {
    assert.equal(canonicalIp("::ffff:192.0.2.1"), "192.0.2.1");
    assert.equal(canonicalIp("192.0.2.1:8080"), "192.0.2.1");
    assert.equal(canonicalIp("2001:0DB8:0:0:0:0:0:1"), "2001:db8::1");
    assert.equal(canonicalIp("fe80::1%eth0"), "fe80::1");
    for (const text of ["", "1", "0x7f.1", "1.2.3.4.5", "unknown", "192.0.2.1, 192.0.2.2"]) {
      assert.equal(canonicalIp(text), undefined, text);
    }
  });

  test("IPv6 is throttled per /64; logs name an IPv4 /24 or an IPv6 /48", () => {
    assert.equal(throttledNetwork("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    assert.equal(throttledNetwork("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
    assert.equal(throttledNetwork("192.0.2.1"), "192.0.2.1");
    assert.equal(logNetwork("192.0.2.77"), "192.0.2.0/24");
    assert.equal(logNetwork("2001:db8:1:2::1"), "2001:db8:1::/48");
    assert.equal(logNetwork("unknown"), "other");
  });
});

describe("createAddressThrottle", () => {
  const client = (authMethod: RegisteredClient["authMethod"]) =>
    ({ clientId: "c", authMethod }) as RegisteredClient;
  const confidential = client("client_secret_post");
  const policy = { capacity: 100, refillMs: 36_000 };
  const key = randomBytes(32);
  const throttle = (trustAuth0ForwardedFor: boolean) =>
    createAddressThrottle({ policy, key, trustAuth0ForwardedFor });
  const idOf = (address: string) =>
    throttle(false).bucketFor({ clientAddress: address }, confidential).id;

  test("the bucket id is a keyed hash of the address; the log network is coarse", () => {
    const bucket = throttle(false).bucketFor({ clientAddress: "192.0.2.1" }, confidential);
    assert.match(bucket.id, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(bucket.network, "192.0.2.0/24");
    assert.deepEqual(bucket.policy, policy);
    assert.notEqual(idOf("192.0.2.1"), idOf("192.0.2.2"));
    const otherKey = createAddressThrottle({
      policy,
      key: randomBytes(32),
      trustAuth0ForwardedFor: false,
    });
    assert.notEqual(
      otherKey.bucketFor({ clientAddress: "192.0.2.1" }, confidential).id,
      idOf("192.0.2.1"),
    );
  });

  test("one IPv6 /64 is one bucket", () => {
    assert.equal(idOf("2001:db8:1:2::1"), idOf("2001:db8:1:2:ffff::7"));
    assert.notEqual(idOf("2001:db8:1:2::1"), idOf("2001:db8:1:3::1"));
  });

  test("auth0-forwarded-for: believed from confidential clients when enabled, one IP address only", () => {
    const forwarded = { clientAddress: "10.0.0.5", auth0ForwardedFor: "198.51.100.4" };
    const on = throttle(true);
    assert.equal(on.bucketFor(forwarded, confidential).id, idOf("198.51.100.4"));
    assert.equal(on.bucketFor(forwarded, client("private_key_jwt")).id, idOf("198.51.100.4"));
    assert.equal(on.bucketFor(forwarded, client("client_secret_basic")).id, idOf("198.51.100.4"));
    // Never from a public client, never when disabled, never when it is not one address.
    assert.equal(on.bucketFor(forwarded, client("none")).id, idOf("10.0.0.5"));
    assert.equal(throttle(false).bucketFor(forwarded, confidential).id, idOf("10.0.0.5"));
    for (const value of ["198.51.100.4, 198.51.100.5", "nope", ""]) {
      const bucket = on.bucketFor({ ...forwarded, auth0ForwardedFor: value }, confidential);
      assert.equal(bucket.id, idOf("10.0.0.5"), value);
    }
  });
});
