// Per-client refresh-token settings (src/oauth/sessions/refresh-token-settings.ts): Auth0's
// names and defaults, every bad value reported, and the clients file carrying them.

import assert from "node:assert/strict";
import { test } from "node:test";
import { parseClients } from "../../src/oauth/client-registry.js";
import {
  DEFAULT_REFRESH_TOKEN_SETTINGS,
  parseRefreshTokenSettings,
} from "../../src/oauth/sessions/refresh-token-settings.js";
import { sessionPolicyOf } from "../../src/oauth/sessions/session-policy.js";

test("absent: Auth0's defaults", () => {
  assert.deepEqual(parseRefreshTokenSettings(undefined, "c"), {
    settings: {
      rotationType: "rotating",
      leewaySeconds: 0,
      tokenLifetimeSeconds: 2_592_000,
      idleTokenLifetimeSeconds: 1_296_000,
      infiniteTokenLifetime: false,
      infiniteIdleTokenLifetime: false,
    },
    problems: [],
  });
  assert.deepEqual(parseRefreshTokenSettings({}, "c").settings, DEFAULT_REFRESH_TOKEN_SETTINGS);
});

test("every setting, with Auth0's names", () => {
  assert.deepEqual(
    parseRefreshTokenSettings(
      {
        rotation_type: "non-rotating",
        leeway: 10,
        token_lifetime: 3600,
        idle_token_lifetime: 600,
        infinite_token_lifetime: true,
        infinite_idle_token_lifetime: true,
      },
      "c",
    ),
    {
      settings: {
        rotationType: "non-rotating",
        leewaySeconds: 10,
        tokenLifetimeSeconds: 3600,
        idleTokenLifetimeSeconds: 600,
        infiniteTokenLifetime: true,
        infiniteIdleTokenLifetime: true,
      },
      problems: [],
    },
  );
});

test("each bad value is one clear problem; the others keep their defaults", () => {
  const cases: Array<[unknown, RegExp]> = [
    ["rotating", /"refresh_token" must be an object/],
    [[], /"refresh_token" must be an object/],
    [null, /"refresh_token" must be an object/],
    [{ rotation_type: "sometimes" }, /"rotation_type" must be one of rotating, non-rotating/],
    [{ leeway: -1 }, /"leeway" must be an integer number of seconds ≥ 0/],
    [{ leeway: 1.5 }, /"leeway" must be an integer/],
    [{ leeway: "10" }, /"leeway" must be an integer/],
    [{ token_lifetime: 0 }, /"token_lifetime" must be an integer number of seconds ≥ 1/],
    [{ idle_token_lifetime: null }, /"idle_token_lifetime" must be an integer/],
    [{ token_lifetime: 1e12 }, /"token_lifetime" must be at most 3153600000 seconds/],
    [{ infinite_token_lifetime: "true" }, /"infinite_token_lifetime" must be true or false/],
    [{ infinite_idle_token_lifetime: 1 }, /"infinite_idle_token_lifetime" must be true or false/],
    [{ rotation: "rotating" }, /unknown setting "rotation" \(known: rotation_type, leeway/],
  ];
  for (const [raw, pattern] of cases) {
    const { settings, problems } = parseRefreshTokenSettings(raw, "clients.json: clients[0]");
    assert.equal(problems.length, 1, `${JSON.stringify(raw)}: ${problems.join("; ")}`);
    assert.match(problems[0] ?? "", pattern);
    assert.match(problems[0] ?? "", /^clients\.json: clients\[0\]: "refresh_token"/);
    assert.deepEqual(settings, DEFAULT_REFRESH_TOKEN_SETTINGS);
  }
  const { problems } = parseRefreshTokenSettings({ leeway: -1, token_lifetime: "x", foo: 1 }, "c");
  assert.equal(problems.length, 3);
});

test("the store policy: milliseconds, null for infinite", () => {
  assert.deepEqual(sessionPolicyOf(DEFAULT_REFRESH_TOKEN_SETTINGS), {
    rotating: true,
    leewayMs: 0,
    absoluteLifetimeMs: 2_592_000_000,
    idleLifetimeMs: 1_296_000_000,
  });
  assert.deepEqual(
    sessionPolicyOf({
      ...DEFAULT_REFRESH_TOKEN_SETTINGS,
      rotationType: "non-rotating",
      leewaySeconds: 5,
      infiniteTokenLifetime: true,
      infiniteIdleTokenLifetime: true,
    }),
    { rotating: false, leewayMs: 5000, absoluteLifetimeMs: null, idleLifetimeMs: null },
  );
});

test("the clients file: every client carries its settings, defaults filled in; problems reported", () => {
  const { clients, problems } = parseClients(
    {
      clients: [
        { client_id: "a", client_secret: "s", grant_types: ["refresh_token"] },
        {
          client_id: "b",
          token_endpoint_auth_method: "none",
          refresh_token: { rotation_type: "non-rotating", leeway: 5 },
        },
        { client_id: "c", client_secret: "s", refresh_token: { leeway: -5 } },
      ],
    },
    "clients.json",
  );
  assert.deepEqual(clients.get("a")?.refreshToken, DEFAULT_REFRESH_TOKEN_SETTINGS);
  assert.deepEqual(clients.get("b")?.refreshToken, {
    ...DEFAULT_REFRESH_TOKEN_SETTINGS,
    rotationType: "non-rotating",
    leewaySeconds: 5,
  });
  assert.deepEqual(problems, [
    'clients.json: clients[2]: "refresh_token": "leeway" must be an integer number of seconds ≥ 0',
  ]);
});
