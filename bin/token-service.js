#!/usr/bin/env node
// The `token-service` command (the starter kit in src/cli/), runnable from any
// folder once linked (`npm link`, `npm install -g <this repo>`) or with
// `npx token-service` inside the repository. It runs:
//  - the TypeScript source through tsx when the clone has its dev dependencies
//    (`npm ci`): the command then always matches the code checked out, where a
//    dist/ built earlier could be stale. A child node gets the same flags as
//    `npm start` (the source export condition of the workspace client package);
//  - else the build, dist/cli/main.js (`npm run build`; the container image).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const source = new URL("../src/cli/main.ts", import.meta.url);
const built = new URL("../dist/cli/main.js", import.meta.url);
const args = process.argv.slice(2);

/** tsx's loader, resolved from this file (never from the caller's folder). */
function tsxLoader() {
  try {
    return import.meta.resolve("tsx");
  } catch {
    return undefined;
  }
}

const tsx = existsSync(source) ? tsxLoader() : undefined;
if (tsx !== undefined) {
  const child = spawnSync(
    process.execPath,
    ["--conditions=@token-service/source", "--import", tsx, fileURLToPath(source), ...args],
    { stdio: "inherit" },
  );
  if (child.error) {
    process.stderr.write(`token-service: cannot run node: ${child.error.message}\n`);
    process.exitCode = 1;
  } else if (child.signal) {
    process.kill(process.pid, child.signal);
  } else {
    process.exitCode = child.status ?? 1;
  }
} else if (existsSync(built)) {
  await import(built.href);
} else {
  process.stderr.write(
    `token-service: nothing to run in ${fileURLToPath(new URL("..", import.meta.url))}: run \`npm ci\` (to run the source) or \`npm run build\`\n`,
  );
  process.exitCode = 1;
}
