// Client authentication on the wire: client_secret_basic through the
// Authorization header and a public client with client_id only get tokens
// from POST /oauth/token (the rules themselves: test/unit/client-auth.test.ts).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  basicAuth,
  codeAt,
  enrolledUser,
  issueMfaToken,
  MFA_OTP_GRANT,
  postTokenForm,
  useService,
} from "../support/flows.js";
import { assertOAuthError } from "../support/oauth-assertions.js";
import { CLIENTS } from "../support/test-service.js";

const basicHeader = basicAuth(CLIENTS.basic.id, CLIENTS.basic.secret);

describe("over REST", () => {
  const service = useService();

  test("client_secret_basic via the header gets tokens; the body secret gets 401", async () => {
    const { userId, secret } = await enrolledUser(service());
    const mfaToken = await issueMfaToken(service(), userId, { clientId: CLIENTS.basic.id });
    const params = {
      grant_type: MFA_OTP_GRANT,
      mfa_token: mfaToken,
      otp: codeAt(service(), secret),
    };
    assertOAuthError(
      await postTokenForm(service(), {
        ...params,
        client_id: CLIENTS.basic.id,
        client_secret: CLIENTS.basic.secret,
      }),
      401,
      "access_denied",
      "Unauthorized",
    );
    const result = await postTokenForm(service(), params, { authorization: basicHeader });
    assert.equal(result.status, 200);
    assert.equal(result.body.token_type, "Bearer");
  });

  test("a public client with client_id only gets tokens", async () => {
    const { userId, secret } = await enrolledUser(service());
    const mfaToken = await issueMfaToken(service(), userId, { clientId: CLIENTS.public.id });
    const result = await postTokenForm(service(), {
      grant_type: MFA_OTP_GRANT,
      client_id: CLIENTS.public.id,
      mfa_token: mfaToken,
      otp: codeAt(service(), secret),
    });
    assert.equal(result.status, 200);
  });
});
