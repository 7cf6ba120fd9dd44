/**
 * Headless Chromium for browser tests: Debian's `chromium` package driven by
 * playwright-core (which downloads no browser of its own). CI installs the
 * package beforehand (.ci/run); a test never installs anything itself, and
 * without the browser the suites skip with the reason printed.
 */
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

/** undefined when Chromium is there, else why the browser tests skip (printed once per file). */
export function chromiumSkipReason(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  const reason = `${CHROMIUM_PATH} is missing (.ci/run installs Debian's chromium package; run it, or apt-get install chromium)`;
  process.stderr.write(`# skipping the browser tests: ${reason}\n`);
  return reason;
}

export interface HeadlessChromium {
  context: BrowserContext;
  close(): Promise<void>;
}

export interface LaunchOptions {
  /** Accept a self-signed certificate (a test's own TLS endpoint on loopback). */
  ignoreHTTPSErrors?: boolean;
}

/** A browser with a fresh profile (`--user-data-dir`), removed on close. */
export async function launchChromium(options: LaunchOptions = {}): Promise<HeadlessChromium> {
  const userDataDir = mkdtempSync(join(tmpdir(), "token-service-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: FLAGS,
    ignoreHTTPSErrors: options.ignoreHTTPSErrors ?? false,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
