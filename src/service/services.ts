import type { MfaTokenCodec } from "../mfa/mfa-token-codec.js";
import type { SecretBox } from "../mfa/secret-box.js";
import type { AddressThrottle } from "../oauth/address-throttle.js";
import type { ClientAuthenticator } from "../oauth/client-auth.js";
import type { ClientRegistry } from "../oauth/client-registry.js";
import type { DpopVerifier } from "../oauth/dpop.js";
import { createGrantTable, type GrantTable } from "../oauth/grants/grant-table.js";
import { withoutSessionsForMfaApi } from "../oauth/grants/mfa-api-tokens.js";
import { createMfaOtpGrant } from "../oauth/grants/mfa-otp.js";
import { createMfaRecoveryCodeGrant } from "../oauth/grants/mfa-recovery-code.js";
import { createRefreshTokenGrant } from "../oauth/grants/refresh-token.js";
import { startingSessions } from "../oauth/grants/session-start.js";
import type { SessionDeps } from "../oauth/sessions/session-deps.js";
import type { SecurityEvents } from "../observability/security-events.js";
import type { BucketPolicy, Store } from "../store/store.js";
import type { AccessTokenVerifier } from "../tokens/access-token-verifier.js";
import type { TokenIssuer } from "../tokens/token-issuer.js";
import type { Clock } from "../util/clock.js";
import { createAssociate } from "./associate.js";
import { createChallenge } from "./challenge.js";
import { createDeleteAuthenticator } from "./delete-authenticator.js";
import { createDeleteUserData } from "./delete-user-data.js";
import { createInternalKeyGate } from "./internal-api-key.js";
import { createIssueMfaToken } from "./issue-mfa-token.js";
import { createListAuthenticators } from "./list-authenticators.js";
import { createMfaApiAuthorizer, mfaApiAudience } from "./mfa-api-caller.js";
import { createResetUserMfa } from "./reset-user-mfa.js";
import { createRevokeToken } from "./revoke-token.js";
import { createRevokeUserSessions } from "./revoke-user-sessions.js";
import { createTokenEndpoint } from "./token-endpoint.js";
import { createUnlockUser } from "./unlock-user.js";

/** The domain objects the use cases are built from, made once at start-up (no key import per request). */
export interface ServiceDeps {
  store: Store;
  clock: Clock;
  events: SecurityEvents;
  clients: () => ClientRegistry;
  clientAuth: ClientAuthenticator;
  dpop: DpopVerifier;
  mfaTokens: MfaTokenCodec;
  /** Seals TOTP secrets at rest. */
  totpSecrets: SecretBox;
  /** HMAC key of recovery-code hashes (never stored in clear). */
  recoveryCodeKey: Buffer;
  tokenIssuer: TokenIssuer;
  accessTokens: AccessTokenVerifier;
  bucket: BucketPolicy;
  /** The client address's failure bucket; undefined when per-address throttling is off. */
  addressThrottle?: AddressThrottle;
  issuerUrl: string;
  issuerName: string;
  internalApiKey: string;
  mfaTokenTtlSeconds: number;
  /** PENDING_ENROLLMENT_TTL_SECONDS. */
  pendingEnrollmentTtlSeconds: number;
  /** Refresh-token sessions: their store, codec and keyed hash. */
  sessions: SessionDeps;
}

/** Every use case, each with only the dependencies it needs. Both surfaces call these. */
export function createServices(deps: ServiceDeps) {
  const { store, clock, events, mfaTokens, bucket, sessions } = deps;
  const mfaApi = mfaApiAudience(deps.issuerUrl);
  const grants: GrantTable = createGrantTable([
    startingSessions(
      withoutSessionsForMfaApi(
        createMfaOtpGrant({ store, mfaTokens, totpSecrets: deps.totpSecrets, bucket, events }),
        mfaApi,
      ),
      sessions,
    ),
    startingSessions(
      withoutSessionsForMfaApi(
        createMfaRecoveryCodeGrant({
          store,
          mfaTokens,
          recoveryCodeKey: deps.recoveryCodeKey,
          bucket,
          events,
        }),
        mfaApi,
      ),
      sessions,
    ),
    withoutSessionsForMfaApi(createRefreshTokenGrant({ sessions }), mfaApi),
  ]);
  const authorize = createMfaApiAuthorizer({
    mfaTokens,
    store,
    clock,
    resource: { accessTokens: deps.accessTokens, dpop: deps.dpop },
    audience: mfaApi,
  });
  // One gate for every internal RPC: the key, and the caller's address bucket.
  const internalKey = createInternalKeyGate({
    internalApiKey: deps.internalApiKey,
    store,
    clock,
    events,
    ...(deps.addressThrottle ? { addressThrottle: deps.addressThrottle } : {}),
  });
  const userAdmin = { internalKey, store, sessions, events, clock };
  return {
    grants,
    tokenEndpoint: createTokenEndpoint({
      grants,
      clientAuth: deps.clientAuth,
      dpop: deps.dpop,
      tokenIssuer: deps.tokenIssuer,
      clock,
      ...(deps.addressThrottle ? { addressThrottle: deps.addressThrottle } : {}),
    }),
    challenge: createChallenge({
      clientAuth: deps.clientAuth,
      mfaTokens,
      store,
      clock,
    }),
    associate: createAssociate({
      authorize,
      store,
      totpSecrets: deps.totpSecrets,
      recoveryCodeKey: deps.recoveryCodeKey,
      issuerName: deps.issuerName,
      events,
      clock,
      pendingTtlMs: deps.pendingEnrollmentTtlSeconds * 1000,
    }),
    listAuthenticators: createListAuthenticators({
      authorize,
      store,
      recoveryCodeKey: deps.recoveryCodeKey,
    }),
    deleteAuthenticator: createDeleteAuthenticator({
      authorize,
      store,
      events,
      recoveryCodeKey: deps.recoveryCodeKey,
      sessions,
      clock,
    }),
    issueMfaToken: createIssueMfaToken({
      internalKey,
      clients: deps.clients,
      mfaTokens,
      store,
      clock,
      ttlSeconds: deps.mfaTokenTtlSeconds,
    }),
    revokeToken: createRevokeToken({ clientAuth: deps.clientAuth, sessions, clock }),
    revokeUserSessions: createRevokeUserSessions({ internalKey, sessions, events, clock }),
    resetUserMfa: createResetUserMfa(userAdmin),
    unlockUser: createUnlockUser(userAdmin),
    deleteUserData: createDeleteUserData(userAdmin),
  };
}

export type Services = ReturnType<typeof createServices>;
