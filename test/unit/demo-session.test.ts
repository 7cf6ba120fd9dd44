// The demo page's session handle (src/demo/demo-session.ts): it names a fresh
// demo user, opens only under the same key, and expires after an hour.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createDemoSessions, DEMO_SESSION_TTL_SECONDS } from "../../src/demo/demo-session.js";
import { OAuthError } from "../../src/oauth/oauth-error.js";
import { createFakeClock } from "../../src/util/clock.js";

const KEY = Buffer.alloc(32, 9);
const UNKNOWN = {
  error: "invalid_request",
  description: "Unknown or expired demo session: start a new demo login",
  status: 400,
};

function refusal(run: () => unknown): { error: string; description: string; status: number } {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof OAuthError);
    return { error: error.error, description: error.description, status: error.status };
  }
  return assert.fail("accepted");
}

describe("demo sessions", () => {
  test("each start is a new demo user, and its handle names that user", () => {
    const sessions = createDemoSessions(KEY, createFakeClock());
    const a = sessions.start();
    const b = sessions.start();
    assert.match(a.userId, /^demo-[A-Za-z0-9_-]{22}$/);
    assert.notEqual(a.userId, b.userId);
    assert.equal(sessions.userOf(a.session), a.userId);
    assert.equal(sessions.userOf(b.session), b.userId);
  });

  test("the handle expires after an hour", () => {
    const clock = createFakeClock();
    const sessions = createDemoSessions(KEY, clock);
    const { userId, session } = sessions.start();
    clock.advance(DEMO_SESSION_TTL_SECONDS * 1000 - 1000);
    assert.equal(sessions.userOf(session), userId);
    clock.advance(1000);
    assert.deepEqual(
      refusal(() => sessions.userOf(session)),
      UNKNOWN,
    );
  });

  test("a handle sealed under another key, tampered or not a handle is refused alike", () => {
    const clock = createFakeClock();
    const sessions = createDemoSessions(KEY, clock);
    const foreign = createDemoSessions(Buffer.alloc(32, 8), clock).start().session;
    const { session } = sessions.start();
    const tampered = `${session.slice(0, -2)}${session.endsWith("AA") ? "AB" : "AA"}`;
    for (const bad of [foreign, tampered, "", "x".repeat(600), "demo-user"]) {
      assert.deepEqual(
        refusal(() => sessions.userOf(bad)),
        UNKNOWN,
      );
    }
  });

  test("a missing or non-string handle is row 3 / row 4", () => {
    const sessions = createDemoSessions(KEY, createFakeClock());
    assert.deepEqual(
      refusal(() => sessions.userOf(undefined)),
      { error: "invalid_request", description: "Missing required parameter: session", status: 400 },
    );
    assert.deepEqual(
      refusal(() => sessions.userOf(42)),
      { error: "invalid_request", description: "session must be a string", status: 400 },
    );
  });
});
