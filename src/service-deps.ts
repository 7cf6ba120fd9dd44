import type { Config } from "./config.js";
import type { LiveSettings } from "./live-settings.js";
import { createMfaTokenCodec } from "./mfa/mfa-token-codec.js";
import { createSecretBox, deriveKey } from "./mfa/secret-box.js";
import { createAddressThrottle } from "./oauth/address-throttle.js";
import { createAssertionVerifier } from "./oauth/client-assertion.js";
import { createClientAuthenticator } from "./oauth/client-auth.js";
import { createDpopVerifier } from "./oauth/dpop.js";
import { createDpopNonces } from "./oauth/dpop-nonce.js";
import { createSessionDeps } from "./oauth/sessions/session-deps.js";
import { countSecurityEvents } from "./observability/counted-security-events.js";
import type { Logger } from "./observability/logger.js";
import type { Metrics } from "./observability/metrics.js";
import { createSecurityEvents } from "./observability/security-events.js";
import { mfaApiAudience } from "./service/mfa-api-caller.js";
import type { ServiceDeps } from "./service/services.js";
import type { SessionStore } from "./store/session-store.js";
import type { Store } from "./store/store.js";
import { createAccessTokenVerifier } from "./tokens/access-token-verifier.js";
import { createTokenIssuer } from "./tokens/token-issuer.js";
import type { Clock } from "./util/clock.js";

/**
 * The composition root's one translation from configuration to domain
 * objects: every key is imported or derived here, once, so nothing below
 * reads the configuration or parses a key per request. The clients and the
 * signing keys are read through `live` (they change on SIGHUP).
 */
export function createServiceDeps(
  config: Config,
  live: LiveSettings,
  store: Store,
  clock: Clock,
  logger: Logger,
  sessionStore: SessionStore,
  /** Counts security events (lockouts among them) when given. */
  metrics?: Metrics,
): ServiceDeps {
  const logged = createSecurityEvents(logger);
  const events = metrics === undefined ? logged : countSecurityEvents(logged, metrics);
  return {
    store,
    clock,
    events,
    clients: live.clients,
    clientAuth: createClientAuthenticator(
      live.clients,
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
      keys: live.signingKeys,
      accessTokenTtlSeconds: config.accessTokenTtlSeconds,
      mfaApi: {
        audience: mfaApiAudience(config.issuerUrl),
        ttlSeconds: config.mfaApiTokenTtlSeconds,
      },
    }),
    accessTokens: createAccessTokenVerifier({
      issuerUrl: config.issuerUrl,
      keys: live.signingKeys,
    }),
    bucket: {
      capacity: config.otpMaxFailures,
      refillMs: config.otpFailureRefillSeconds * 1000,
    },
    ...(config.addressThrottling.enabled
      ? {
          addressThrottle: createAddressThrottle({
            policy: {
              capacity: config.addressThrottling.maxFailures,
              refillMs: config.addressThrottling.refillSeconds * 1000,
            },
            key: deriveKey(config.secretsKey, "client-address"),
            trustAuth0ForwardedFor: config.clientAddress.trustAuth0ForwardedFor,
          }),
        }
      : {}),
    issuerUrl: config.issuerUrl,
    issuerName: config.issuerName,
    internalApiKey: config.internalApiKey,
    mfaTokenTtlSeconds: config.mfaTokenTtlSeconds,
    pendingEnrollmentTtlSeconds: config.pendingEnrollmentTtlSeconds,
    sessions: createSessionDeps(config.secretsKey, sessionStore, {
      maxFamiliesPerUser: config.maxSessionsPerUser,
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
