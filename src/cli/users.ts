import { type CallOptions, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { MfaTokenService, OAuthErrorSchema } from "@token-service/client";
import { type AdminClientConfig, ConfigError, loadAdminClientConfig } from "../config.js";
import { CliError, type CliIo, EXIT, usageError } from "./cli-io.js";
import { parseCommandArgs } from "./parse-command-args.js";

/** Each administrator's command: its RPC, what it does, and its one line of success. */
const ACTIONS = {
  reset: {
    rpc: "ResetUserMfa",
    does: `removes the user's OTP authenticator (active or pending) and recovery code,
and revokes every session (the help desk's "lost phone" path: the user's next
login enrolls afresh).`,
    async call(client: AdminClient, userId: string, options: CallOptions) {
      const reset = await client.resetUserMfa({ userId }, options);
      const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
      return `user ${JSON.stringify(userId)}: ${plural(reset.authenticatorsRemoved, "authenticator")} removed, ${plural(reset.sessionsRevoked, "session")} revoked`;
    },
  },
  unlock: {
    rpc: "UnlockUser",
    does: `refills the user's failure bucket: a user locked out by wrong codes
(too_many_attempts) may try again at once.`,
    async call(client: AdminClient, userId: string, options: CallOptions) {
      await client.unlockUser({ userId }, options);
      return `user ${JSON.stringify(userId)} unlocked`;
    },
  },
  delete: {
    rpc: "DeleteUserData",
    does: `erases everything the service stores about the user (authenticator,
recovery code, sessions, failure bucket, consumed mfa_tokens): afterwards no
record names the user. It cannot be undone.`,
    async call(client: AdminClient, userId: string, options: CallOptions) {
      await client.deleteUserData({ userId }, options);
      return `user ${JSON.stringify(userId)}: every record deleted`;
    },
  },
} as const;

type AdminClient = ReturnType<typeof createClient<typeof MfaTokenService>>;
export type UsersAction = keyof typeof ACTIONS;

/** Milliseconds a command waits for the service's answer (a bounded wait: a silent service is an error). */
const TIMEOUT_MS = 30_000;

export function usersHelp(action: UsersAction): string {
  const { rpc, does } = ACTIONS[action];
  return `Usage: token-service users ${action} <user_id> [--url <url>]

Calls the running service's token.v1.MfaTokenService/${rpc}, which
${does}
An unknown user is not an error. Each call is a security event in the
service's log.

The service is reached at INTERNAL_HOST:INTERNAL_PORT when INTERNAL_PORT is
set (the internal listener), else at HOST:PORT (defaults 127.0.0.1:8080), with
INTERNAL_API_KEY as the bearer: run it with the service's environment, or
name the service with --url.

Example:
  env $(cat .env) token-service users ${action} auth0|5f7c8ec7c33c6c004bbafe82
`;
}

/** `token-service users reset|unlock|delete <user_id>`. */
export function usersCommand(action: UsersAction) {
  return async (args: readonly string[], io: CliIo): Promise<number> => {
    const { values, positionals } = parseCommandArgs(
      args,
      { help: { type: "boolean", short: "h" }, url: { type: "string" } },
      true,
    );
    if (values.help) {
      io.out(usersHelp(action));
      return EXIT.ok;
    }
    if (positionals.length !== 1 || positionals[0] === "") {
      throw usageError("one user_id is required");
    }
    const userId = positionals[0] as string;
    const target = targetOf(io.env, values.url);
    const client = createClient(
      MfaTokenService,
      createConnectTransport({ baseUrl: target.url, httpVersion: "1.1" }),
    );
    const options = {
      headers: { authorization: `Bearer ${target.internalApiKey}` },
      timeoutMs: TIMEOUT_MS,
    };
    try {
      io.out(`${await ACTIONS[action].call(client, userId, options)}\n`);
    } catch (error) {
      throw refusal(error, target.url);
    }
    return EXIT.ok;
  };
}

function targetOf(env: CliIo["env"], url: string | undefined): AdminClientConfig {
  try {
    return loadAdminClientConfig(env, url);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new CliError(error.problems.join("; "), EXIT.config);
  }
}

/** One line for a failed call: the service's answer, or why it could not be reached. */
function refusal(error: unknown, url: string): CliError {
  const connectError = ConnectError.from(error);
  const [detail] = connectError.findDetails(OAuthErrorSchema);
  if (detail === undefined) {
    return new CliError(
      `cannot reach the service's internal API at ${url} (${Code[connectError.code]}: ${connectError.rawMessage})`,
    );
  }
  const hint =
    connectError.code === Code.Unauthenticated
      ? " (is INTERNAL_API_KEY the service's?)"
      : connectError.code === Code.ResourceExhausted
        ? ` (retry in ${detail.retryAfterSeconds} s)`
        : "";
  return new CliError(
    `the service refused: ${Code[connectError.code]}: ${detail.error} "${detail.errorDescription}"${hint}`,
  );
}
