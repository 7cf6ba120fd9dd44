/**
 * Headless Chromium for browser tests: Debian's `chromium` package driven by
 * playwright-core (which downloads no browser of its own). When the package
 * is missing, one `apt-get install` is tried (CI runs as root on Debian and
 * .ci/run installs it beforehand); only if that fails is the suite skipped,
 * with the reason printed.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Flags for a quiet, self-contained headless run: no sandbox (root in CI), no network of its own. */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** undefined when Chromium is there (installed now if need be), else why the browser tests skip. */
export async function chromiumSkipReason(): Promise<string | undefined> {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  process.stderr.write(`# ${CHROMIUM_PATH} is missing: trying apt-get install -y chromium\n`);
  const failure = await new Promise<string | undefined>((resolve) => {
    execFile(
      "sh",
      [
        "-c",
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-liberation",
      ],
      {
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
        timeout: 15 * 60_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, _stdout, stderr) => {
        if (error === null) resolve(undefined);
        else {
          const lastLine = stderr.trim().split("\n").at(-1) ?? error.message;
          resolve(`apt-get install -y chromium failed (${lastLine})`);
        }
      },
    );
  });
  if (failure === undefined && existsSync(CHROMIUM_PATH)) return undefined;
  const reason = `Chromium is not installed and could not be: ${failure ?? `no ${CHROMIUM_PATH} after apt-get`}`;
  process.stderr.write(`# skipping the browser tests: ${reason}\n`);
  return reason;
}

export interface HeadlessChromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A browser with a fresh profile (`--user-data-dir`), removed on close. */
export async function launchChromium(): Promise<HeadlessChromium> {
  const userDataDir = mkdtempSync(join(tmpdir(), "token-service-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: FLAGS,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
