/**
 * The failover invariant (SPEC §7 "Fail closed", "Replica acknowledgement"),
 * one scenario for every deployment (test/integration/failover-*.test.ts):
 *
 * 1. while replication is healthy: a user enrolls and confirms, then logs in
 *    several times (mfa_token + code → tokens) and rotates refresh tokens —
 *    every answer 200;
 * 2. the replication link stalls: writes made now must answer 503
 *    (row 12, `Retry-After`): the master cannot get them acknowledged;
 * 3. the master dies and the replica is promoted (`deployment.failover`);
 *    the service must follow it; with no replica left, writes answer 503;
 *    a fresh replica is attached and writes succeed again;
 * 4. every answer of 200 from step 1 still holds: each used mfa_token + code
 *    re-sent at its own time is refused, each rotated refresh token is
 *    refused while the latest one works, the user is still enrolled (a
 *    password-only `associate` is refused, the old authenticator verifies).
 *    Nothing answers 500 at any point.
 *
 * Every request goes over REST with fetch; the service's clock is the test's
 * fake clock, so a re-sent code is sent at the time it was first accepted and
 * only the store's single-use state can refuse it.
 */
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { decodeBase32Secret, generateTotp } from "../../src/mfa/totp.js";
import { issueMfaToken, MFA_OTP_GRANT, nextStep, postTokenForm } from "./flows.js";
import { waitUntil } from "./redis-process.js";
import { postRefresh, SESSION_CLIENTS, SESSION_SCOPE } from "./session-flows.js";
import { CLIENTS, type TestService } from "./test-service.js";

export interface FailoverDeployment {
  service: TestService;
  /**
   * A new user id whose keys live on the master that will fail (each call a
   * different one): the scenario's user, and others whose writes probe the
   * store without touching that user's single-use state.
   */
  newUserId(): string;
  /** Stalls the replication link of that master (sockets stay open). */
  freezeReplication(): void;
  /** Kills that master and gets its replica promoted (and the service's path to it, if needed). */
  failover(): Promise<void>;
  /** Gives the promoted master a fresh replica. */
  attachReplica(): Promise<void>;
}

export interface FailoverCounts {
  /** Logins answered 200 before the failover (the enrollment's confirmation included). */
  logins: number;
  /** Refresh tokens rotated before the failover. */
  rotations: number;
  /** A used mfa_token + code that produced tokens again after the failover. */
  doubleIssues: number;
  /** A rotated refresh token that bought tokens after the failover. */
  reusedRefreshTokens: number;
  /** The latest refresh token of a family refused after the failover. */
  lostSessions: number;
  /** The enrollment gone after the failover (associate accepted, or the old authenticator refused). */
  lostEnrollments: number;
  /** Writes made while the link was stalled that answered 503 (of `stalledWrites`). */
  stalledWrite503s: number;
  stalledWrites: number;
  /** The first write on the promoted master, before it has a replica, answered 503. */
  orphanWrite503: boolean;
  /** Answers of 500 anywhere in the run. */
  serverErrors: number;
  /** From the master's death to the service's first answer from the promoted one. */
  followMs: number;
}

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

interface UsedCode {
  clientId: string;
  clientSecret: string;
  mfaToken: string;
  otp: string;
  atMs: number;
}

const UNAVAILABLE = {
  error: "temporarily_unavailable",
  error_description: "Service temporarily unavailable",
};
const LOGINS = 3;
const ROTATIONS = 2;

export async function runFailoverScenario(deployment: FailoverDeployment): Promise<FailoverCounts> {
  const { service } = deployment;
  const userId = deployment.newUserId();
  const statuses: number[] = [];
  const record = (answer: Answer): Answer => {
    statuses.push(answer.status);
    return answer;
  };
  const rotating = SESSION_CLIENTS.rotating;
  const codeNow = (secret: string) =>
    generateTotp(decodeBase32Secret(secret), Math.floor(service.clock.nowMs() / 1000));
  /** Moves the clock to a step whose code differs from the previous step's. */
  const freshStep = (secret: string) => {
    for (;;) {
      nextStep(service);
      const now = Math.floor(service.clock.nowMs() / 1000);
      const key = decodeBase32Secret(secret);
      if (generateTotp(key, now) !== generateTotp(key, now - 30)) return;
    }
  };

  const associate = async (mfaToken: string): Promise<Answer> => {
    const response = await fetch(`${service.baseUrl}/mfa/associate`, {
      method: "POST",
      headers: { authorization: `Bearer ${mfaToken}`, "content-type": "application/json" },
      body: JSON.stringify({ authenticator_types: ["otp"] }),
    });
    return record({
      status: response.status,
      headers: response.headers,
      body: (await response.json()) as Record<string, unknown>,
    });
  };
  const listAuthenticators = async (mfaToken: string): Promise<number> => {
    const response = await fetch(`${service.baseUrl}/mfa/authenticators`, {
      headers: { authorization: `Bearer ${mfaToken}` },
    });
    await response.arrayBuffer();
    statuses.push(response.status);
    return response.status;
  };
  const verify = async (used: UsedCode): Promise<Answer> =>
    record(
      await postTokenForm(service, {
        grant_type: MFA_OTP_GRANT,
        client_id: used.clientId,
        client_secret: used.clientSecret,
        mfa_token: used.mfaToken,
        otp: used.otp,
      }),
    );
  /** A login of the rotating client with a fresh code; the code is remembered when it answered 200. */
  const login = async (secret: string, used: UsedCode[]): Promise<Answer> => {
    freshStep(secret);
    const attempt: UsedCode = {
      clientId: rotating.id,
      clientSecret: rotating.secret,
      mfaToken: await issueMfaToken(service, userId, {
        clientId: rotating.id,
        scope: SESSION_SCOPE,
      }),
      otp: codeNow(secret),
      atMs: service.clock.nowMs(),
    };
    const answer = await verify(attempt);
    if (answer.status === 200) used.push(attempt);
    return answer;
  };
  const exchange = async (token: string): Promise<Answer> =>
    record(await postRefresh(service, rotating, token));
  /** Row 12 exactly: 503, its body, `Retry-After` in whole seconds. */
  const isUnavailable = (answer: Answer) =>
    answer.status === 503 &&
    answer.body.error === UNAVAILABLE.error &&
    answer.body.error_description === UNAVAILABLE.error_description &&
    /^\d+$/.test(answer.headers.get("retry-after") ?? "");

  // 1. Healthy replication: enroll, confirm, log in, rotate.
  const used: UsedCode[] = [];
  const enrollment = await associate(await issueMfaToken(service, userId));
  assert.equal(enrollment.status, 200, `associate: ${enrollment.body.error_description}`);
  const secret = String(enrollment.body.secret);
  freshStep(secret);
  const confirmation: UsedCode = {
    clientId: CLIENTS.post.id,
    clientSecret: CLIENTS.post.secret,
    mfaToken: await issueMfaToken(service, userId),
    otp: codeNow(secret),
    atMs: service.clock.nowMs(),
  };
  const confirmed = await verify(confirmation);
  assert.equal(confirmed.status, 200, `confirmation: ${confirmed.body.error_description}`);
  used.push(confirmation);

  const families: { latest: string; rotated: string[] }[] = [];
  for (let i = 0; i < LOGINS; i++) {
    const answer = await login(secret, used);
    assert.equal(answer.status, 200, `login: ${answer.body.error_description}`);
    const family = { latest: String(answer.body.refresh_token), rotated: [] as string[] };
    for (let r = 0; r < ROTATIONS; r++) {
      const rotated = await exchange(family.latest);
      assert.equal(rotated.status, 200, `refresh: ${rotated.body.error_description}`);
      family.rotated.push(family.latest);
      family.latest = String(rotated.body.refresh_token);
    }
    families.push(family);
  }
  const logins = used.length;
  const rotations = families.reduce((sum, family) => sum + family.rotated.length, 0);

  // 2. The link stalls: nothing may be issued that the replica does not hold.
  deployment.freezeReplication();
  // The master still serves the service (a read answers): what refuses the
  // writes below is the missing acknowledgement, not a dead connection.
  const stalledRead = await listAuthenticators(await issueMfaToken(service, userId));
  assert.equal(stalledRead, 200, "a read while the link is stalled");
  const stalled: [string, Answer][] = [];
  stalled.push(["a login while the link is stalled", await login(secret, used)]);
  const family = families[0] as { latest: string; rotated: string[] };
  const stalledRefresh = await exchange(family.latest);
  if (stalledRefresh.status === 200) {
    family.rotated.push(family.latest);
    family.latest = String(stalledRefresh.body.refresh_token);
  }
  stalled.push(["a refresh while the link is stalled", stalledRefresh]);
  // An enrollment: associate, then confirm. Should both answer 200, that
  // user is enrolled and must stay so.
  const enrolled = [{ userId, secret }];
  const newcomer = deployment.newUserId();
  const newcomerAssociate = await associate(await issueMfaToken(service, newcomer));
  stalled.push(["an enrollment while the link is stalled", newcomerAssociate]);
  if (newcomerAssociate.status === 200) {
    const newcomerSecret = String(newcomerAssociate.body.secret);
    const newcomerConfirmation = await verify({
      clientId: CLIENTS.post.id,
      clientSecret: CLIENTS.post.secret,
      mfaToken: await issueMfaToken(service, newcomer),
      otp: codeNow(newcomerSecret),
      atMs: service.clock.nowMs(),
    });
    if (newcomerConfirmation.status === 200) {
      enrolled.push({ userId: newcomer, secret: newcomerSecret });
    }
  }
  const stalledWrite503s = stalled.filter(([, answer]) => isUnavailable(answer)).length;

  // 3. The master dies, the replica is promoted; the service follows it.
  const diedAt = Date.now();
  await deployment.failover();
  await waitUntil("the service to read from the promoted master", async () => {
    // IssueMfaToken reads the store too (Unavailable meanwhile): inside the poll.
    let reader: string;
    try {
      reader = await issueMfaToken(service, userId);
    } catch (error) {
      const code = ConnectError.from(error).code;
      assert.equal(code, Code.Unavailable, `IssueMfaToken failed with ${Code[code]}`);
      return false;
    }
    const status = await listAuthenticators(reader);
    assert.ok(status === 200 || status === 503, `GET /mfa/authenticators answered ${status}`);
    return status === 200;
  });
  const followMs = Date.now() - diedAt;
  // No replica to acknowledge: writes fail closed until one is attached. The
  // probes are other users' enrollments: a write that answered 503 stays on
  // the master (SPEC §7), and a code burnt for the scenario's user would
  // hide a lost single-use mark behind the replay guard's last step.
  const prober = deployment.newUserId();
  const probe = async () => associate(await issueMfaToken(service, prober));
  const orphanWrite503 = isUnavailable(await probe());
  await deployment.attachReplica();
  await waitUntil("a write to succeed with the fresh replica", async () => {
    const answer = await probe();
    assert.ok(
      answer.status === 200 || answer.status === 503,
      `associate answered ${answer.status}`,
    );
    return answer.status === 200;
  });

  // 4. Every 200 before the failover still holds; nothing of the scenario's
  // user was written since, so only the single-use state can refuse.
  const resumeMs = service.clock.nowMs();
  let doubleIssues = 0;
  for (const attempt of used) {
    service.clock.set(attempt.atMs);
    if ((await verify(attempt)).status === 200) doubleIssues += 1;
  }
  service.clock.set(resumeMs);
  // Each family is asked one way, since either question changes the answer
  // to the other (a reused token revokes the family; an unknown successor
  // counts as reuse too). The first family (the one refreshed while the
  // link was stalled) re-sends its rotated tokens, newest first: the newest
  // is the one a lost rotation would bring back. The others send their
  // latest token, which must still work.
  let lostSessions = 0;
  let reusedRefreshTokens = 0;
  for (const [index, { latest, rotated }] of families.entries()) {
    if (index === 0) {
      for (const token of [...rotated].reverse()) {
        if ((await exchange(token)).status === 200) reusedRefreshTokens += 1;
      }
    } else if ((await exchange(latest)).status !== 200) {
      lostSessions += 1;
    }
  }
  let lostEnrollments = 0;
  for (const user of enrolled) {
    const passwordOnly = await associate(await issueMfaToken(service, user.userId));
    const stillEnrolled =
      passwordOnly.status === 403 &&
      passwordOnly.body.error_description === "User is already enrolled.";
    freshStep(user.secret);
    const oldAuthenticator = await verify({
      clientId: CLIENTS.post.id,
      clientSecret: CLIENTS.post.secret,
      mfaToken: await issueMfaToken(service, user.userId),
      otp: codeNow(user.secret),
      atMs: service.clock.nowMs(),
    });
    if (!stillEnrolled || oldAuthenticator.status !== 200) lostEnrollments += 1;
  }

  return {
    logins,
    rotations,
    doubleIssues,
    reusedRefreshTokens,
    lostSessions,
    lostEnrollments,
    stalledWrite503s,
    stalledWrites: stalled.length,
    orphanWrite503,
    serverErrors: statuses.filter((status) => status >= 500 && status !== 503).length,
    followMs,
  };
}

/** The invariant (all zero) and the stalled writes (all 503), with every figure in the message. */
export function assertFailoverInvariant(counts: FailoverCounts): void {
  const figures = JSON.stringify(counts);
  assert.deepEqual(
    {
      doubleIssues: counts.doubleIssues,
      reusedRefreshTokens: counts.reusedRefreshTokens,
      lostSessions: counts.lostSessions,
      lostEnrollments: counts.lostEnrollments,
      serverErrors: counts.serverErrors,
      stalledWrite503s: counts.stalledWrite503s,
      orphanWrite503: counts.orphanWrite503,
    },
    {
      doubleIssues: 0,
      reusedRefreshTokens: 0,
      lostSessions: 0,
      lostEnrollments: 0,
      serverErrors: 0,
      stalledWrite503s: counts.stalledWrites,
      orphanWrite503: true,
    },
    figures,
  );
}
