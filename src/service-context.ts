import type { Clock } from "./clock.js";
import type { Config } from "./config.js";
import { createMfaTokenCodec, type MfaTokenCodec } from "./mfa/mfa-token-codec.js";
import { createSecretBox, deriveKey, type SecretBox } from "./mfa/secret-box.js";
import { createAssertionVerifier } from "./oauth/client-assertion.js";
import { type ClientAuthenticator, createClientAuthenticator } from "./oauth/client-auth.js";
import { createDpopVerifier, type DpopVerifier } from "./oauth/dpop.js";
import { createDpopNonces } from "./oauth/dpop-nonce.js";
import type { Logger } from "./observability/logger.js";
import { createMetrics, type Metrics } from "./observability/metrics.js";
import type { BucketPolicy, Store } from "./store/store.js";
import {
  type AccessTokenVerifier,
  createAccessTokenVerifier,
} from "./tokens/access-token-verifier.js";
import { createTokenIssuer, type TokenIssuer } from "./tokens/token-issuer.js";

/**
 * Everything the service functions need, built once at start-up: no key
 * import, key derivation or config read happens per request.
 */
export interface ServiceContext {
  config: Config;
  store: Store;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  clientAuth: ClientAuthenticator;
  dpop: DpopVerifier;
  mfaTokens: MfaTokenCodec;
  /** Seals TOTP secrets at rest (SPEC §4). */
  totpSecrets: SecretBox;
  /** HMAC key for recovery-code hashes (SPEC §4: never stored in clear). */
  recoveryCodeKey: Buffer;
  tokenIssuer: TokenIssuer;
  /** Checks access tokens this service issued (the MFA API, a protected resource). */
  accessTokens: AccessTokenVerifier;
  bucket: BucketPolicy;
}

export function createServiceContext(
  config: Config,
  store: Store,
  clock: Clock,
  logger: Logger,
): ServiceContext {
  const signingKey = config.signingKeys[0];
  if (signingKey === undefined) throw new Error("no signing key configured");
  return {
    config,
    store,
    clock,
    logger,
    metrics: createMetrics(),
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
  };
}
