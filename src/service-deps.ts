import type { Clock } from "./clock.js";
import type { Config } from "./config.js";
import { createMfaTokenCodec } from "./mfa/mfa-token-codec.js";
import { createSecretBox, deriveKey } from "./mfa/secret-box.js";
import { createAssertionVerifier } from "./oauth/client-assertion.js";
import { createClientAuthenticator } from "./oauth/client-auth.js";
import { createDpopVerifier } from "./oauth/dpop.js";
import { createDpopNonces } from "./oauth/dpop-nonce.js";
import type { Logger } from "./observability/logger.js";
import { createSecurityEvents } from "./observability/security-events.js";
import type { ServiceDeps } from "./service/services.js";
import { createSessionDeps } from "./sessions/session-deps.js";
import type { SessionStore } from "./store/session-store.js";
import type { Store } from "./store/store.js";
import { createAccessTokenVerifier } from "./tokens/access-token-verifier.js";
import { createTokenIssuer } from "./tokens/token-issuer.js";

/**
 * The composition root's one translation from configuration to domain
 * objects: every key is imported or derived here, once, so nothing below
 * reads the configuration or parses a key per request.
 */
export function createServiceDeps(
  config: Config,
  store: Store,
  clock: Clock,
  logger: Logger,
  sessionStore: SessionStore,
): ServiceDeps {
  const signingKey = config.signingKeys[0];
  if (signingKey === undefined) throw new Error("no signing key configured");
  const events = createSecurityEvents(logger);
  return {
    store,
    clock,
    events,
    clients: () => config.clients,
    clientAuth: createClientAuthenticator(
      config.clients,
      createAssertionVerifier({ issuerUrl: config.issuerUrl, store, clock, logger }),
      logger,
    ),
    dpop: createDpopVerifier(
      createDpopNonces(config.secretsKey, config.dpop.nonceWindowSeconds),
      config.dpop,
      logger,
    ),
    mfaTokens: createMfaTokenCodec(config.secretsKey),
    totpSecrets: createSecretBox(config.secretsKey, "totp-secret"),
    recoveryCodeKey: deriveKey(config.secretsKey, "recovery-code"),
    tokenIssuer: createTokenIssuer({
      issuerUrl: config.issuerUrl,
      signingKey,
      accessTokenTtlSeconds: config.accessTokenTtlSeconds,
    }),
    accessTokens: createAccessTokenVerifier({
      issuerUrl: config.issuerUrl,
      keys: config.signingKeys,
    }),
    bucket: {
      capacity: config.otpMaxFailures,
      refillMs: config.otpFailureRefillSeconds * 1000,
    },
    issuerUrl: config.issuerUrl,
    issuerName: config.issuerName,
    internalApiKey: config.internalApiKey,
    mfaTokenTtlSeconds: config.mfaTokenTtlSeconds,
    sessions: createSessionDeps(config.secretsKey, sessionStore, {
      onReuseDetected: ({ userId, clientId, familyId }) =>
        events.record("refresh_token_reuse_detected", {
          userId,
          clientId,
          outcome: "family_revoked",
          family_id: familyId,
        }),
    }),
  };
}
