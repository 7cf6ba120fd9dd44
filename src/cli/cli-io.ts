/**
 * What a command may touch besides its arguments: output streams and the
 * environment. Passed in so the tests run commands in-process and read what
 * they printed; `main.ts` wires the real process.
 */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
}

/**
 * Exit statuses (BSD sysexits.h, as the service's own EX_CONFIG = 78): a
 * script can tell a typo in the command line from a bad file or secret.
 */
export const EXIT = {
  ok: 0,
  /** Something unexpected; the one line says what. */
  failure: 1,
  /** EX_USAGE: unknown command or option, missing or conflicting arguments. */
  usage: 64,
  /** EX_DATAERR: input data is wrong (a secret that is not base32, a file that is not a JWKS). */
  dataErr: 65,
  /** EX_IOERR: a file cannot be read or written. */
  ioErr: 74,
  /** EX_CONFIG: the configuration has problems (what the service exits with). */
  config: 78,
} as const;

/** A failure a command reports as one line (never a stack trace). */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, EXIT.usage);
}
