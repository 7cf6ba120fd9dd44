import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { CliError, EXIT } from "./cli-io.js";

/** The parsed file, or undefined when it does not exist (`--add-to` then creates it). */
export function readJsonFileIfExists(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CliError(`${path} cannot be read (${codeOf(error)})`, EXIT.ioErr);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${path} is not valid JSON`, EXIT.dataErr);
  }
}

/**
 * Writes pretty JSON through a temporary file in the same folder and a
 * rename, so a service reading the file at that moment (a start, a reload)
 * sees the old or the new content, never half of it. A new file is created
 * 0600 (it holds private keys or client secrets), in a new 0700 folder if
 * need be (`--add-to secrets/keys.json`); an existing one keeps its mode.
 */
export function writeJsonFileAtomically(path: string, value: unknown): void {
  let mode = 0o600;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    // a new file
  }
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}`);
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(temporary, `${JSON.stringify(value, null, 2)}\n`, { mode, flag: "wx" });
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new CliError(`${path} cannot be written (${codeOf(error)})`, EXIT.ioErr);
  }
}

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}
