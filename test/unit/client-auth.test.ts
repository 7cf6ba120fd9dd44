// docs/configuration.md client authentication: each client with its registered method and only that one;
// every failure is row 1.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { type ClientCredentials, createClientAuthenticator } from "../../src/oauth/client-auth.js";
import { parseClients } from "../../src/oauth/client-registry.js";
import { OAuthError } from "../../src/oauth/oauth-error.js";
import { basicAuth } from "../support/flows.js";
import { CLIENTS, FIXTURE_CLIENTS_FILE } from "../support/test-service.js";

const fixture = parseClients(JSON.parse(readFileSync(FIXTURE_CLIENTS_FILE, "utf8")), "fixture");
const special = parseClients(
  {
    clients: [
      {
        client_id: "id:with space",
        client_secret: "p@ss:w+rd/%",
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
  },
  "special",
);
const registry = new Map([...fixture.clients, ...special.clients]);
const auth = createClientAuthenticator(() => registry);

async function accepted(credentials: ClientCredentials): Promise<string> {
  return (await auth.authenticate(credentials)).clientId;
}

async function assertRefused(credentials: ClientCredentials): Promise<void> {
  await assert.rejects(auth.authenticate(credentials), (error: unknown) => {
    assert.ok(error instanceof OAuthError);
    assert.deepEqual(
      [error.status, error.error, error.description],
      [401, "access_denied", "Unauthorized"],
    );
    return true;
  });
}

const basicHeader = basicAuth(CLIENTS.basic.id, CLIENTS.basic.secret);

describe("client_secret_basic", () => {
  test("the Authorization header authenticates", async () => {
    assert.equal(await accepted({ authorization: basicHeader }), CLIENTS.basic.id);
    // The scheme is case-insensitive; a matching client_id in the body is allowed.
    const lower = `basic ${basicHeader.slice(6)}`;
    assert.equal(
      await accepted({ authorization: lower, clientId: CLIENTS.basic.id }),
      "basic-client",
    );
  });

  test("id and secret are form-urlencoded inside the header (RFC 6749 §2.3.1)", async () => {
    assert.equal(
      await accepted({ authorization: basicAuth("id:with space", "p@ss:w+rd/%") }),
      "id:with space",
    );
  });

  test("the secret in the body is refused", async () => {
    await assertRefused({ clientId: CLIENTS.basic.id, clientSecret: CLIENTS.basic.secret });
  });

  test("a wrong secret, a mismatching body client_id, a malformed header", async () => {
    await assertRefused({ authorization: basicAuth(CLIENTS.basic.id, "wrong") });
    await assertRefused({ authorization: basicHeader, clientId: CLIENTS.post.id });
    await assertRefused({ authorization: `Basic ${Buffer.from("no-colon").toString("base64")}` });
    await assertRefused({ authorization: `Basic ${Buffer.from("%zz:x").toString("base64")}` });
  });
});

describe("client_secret_post", () => {
  test("the right secret in the body authenticates", async () => {
    assert.equal(
      await accepted({ clientId: CLIENTS.post.id, clientSecret: CLIENTS.post.secret }),
      CLIENTS.post.id,
    );
  });

  test("a wrong, missing, prefixed or non-string secret is refused", async () => {
    for (const clientSecret of [
      "wrong",
      undefined,
      `${CLIENTS.post.secret}x`,
      42,
      [CLIENTS.post.secret],
    ]) {
      await assertRefused({ clientId: CLIENTS.post.id, clientSecret });
    }
  });

  test("the secret in a Basic header is refused", async () => {
    await assertRefused({ authorization: basicAuth(CLIENTS.post.id, CLIENTS.post.secret) });
  });
});

describe("none (public client)", () => {
  test("client_id alone authenticates", async () => {
    assert.equal(await accepted({ clientId: CLIENTS.public.id }), CLIENTS.public.id);
  });

  test("a public client sending a secret is refused", async () => {
    await assertRefused({ clientId: CLIENTS.public.id, clientSecret: "anything" });
    await assertRefused({ authorization: basicAuth(CLIENTS.public.id, "") });
    await assertRefused({
      clientId: CLIENTS.public.id,
      clientAssertionType: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    });
  });
});

describe("refused whatever the client", () => {
  test("two methods at once", async () => {
    await assertRefused({ authorization: basicHeader, clientSecret: CLIENTS.basic.secret });
    await assertRefused({
      clientId: CLIENTS.post.id,
      clientSecret: CLIENTS.post.secret,
      clientAssertion: "a.b.c",
      clientAssertionType: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    });
  });

  test("unknown or missing client id", async () => {
    await assertRefused({ clientId: "nobody", clientSecret: "x" });
    await assertRefused({});
    await assertRefused({ clientId: 42 });
  });
});

describe("WWW-Authenticate (RFC 6749 §5.2)", () => {
  test("a failed Basic attempt is challenged for the Basic scheme; a failed body secret is not", async () => {
    const viaHeader = await auth
      .authenticate({ authorization: basicAuth(CLIENTS.basic.id, "wrong-secret") })
      .catch((error: unknown) => error);
    assert.ok(viaHeader instanceof OAuthError);
    assert.equal(viaHeader.headers["www-authenticate"], 'Basic realm="token-service"');
    const viaBody = await auth
      .authenticate({ clientId: CLIENTS.post.id, clientSecret: "wrong-secret" })
      .catch((error: unknown) => error);
    assert.ok(viaBody instanceof OAuthError);
    assert.equal(viaBody.headers["www-authenticate"], undefined);
  });
});
