// Dockerfile, compose.yaml (and its PostgreSQL variant, compose.postgres.yaml)
// and .dockerignore, checked statically: this
// machine cannot pull base images or run a Docker engine, so the files are
// parsed (dockerfile-ast, with dockerfile-utils' validator) and compose.yaml is
// validated against the Compose specification's JSON schema (the copy dclint
// ships) with ajv. The last test loads the configuration the container would
// get, with secrets made by the starter kit.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { Copy, DockerfileParser, Env, type Instruction } from "dockerfile-ast";
import { validate } from "dockerfile-utils";
import { parse as parseYaml } from "yaml";
import { newClientEntry } from "../../src/cli/client-new.js";
import { generateInternalApiKey } from "../../src/cli/internal-api-key.js";
import { generateSigningJwk } from "../../src/cli/keys-generate.js";
import { generateSecretsKey } from "../../src/cli/secrets-key.js";
import { loadConfig } from "../../src/config.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const read = (path: string) => readFileSync(join(REPO, path), "utf8");

const DOCKERFILE = read("Dockerfile");
const DOCKERIGNORE = read(".dockerignore")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line !== "" && !line.startsWith("#"));

// ---------------------------------------------------------------- Dockerfile

interface Stage {
  name: string | null;
  image: string;
  instructions: Instruction[];
}

function stagesOf(text: string): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    if (instruction.getKeyword() === "FROM") {
      const [image = "", as, name = null] = instruction.getArguments().map((a) => a.getValue());
      stages.push({ name: as?.toUpperCase() === "AS" ? name : null, image, instructions: [] });
    }
    stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

const STAGES = stagesOf(DOCKERFILE);
const RUNTIME = STAGES.at(-1) as Stage;
const inRuntime = (keyword: string) =>
  RUNTIME.instructions.filter((i) => i.getKeyword() === keyword);
const argsOf = (instruction: Instruction) => instruction.getArguments().map((a) => a.getValue());
/** A COPY's `--from` stage, or undefined for a copy from the build context. */
const copyFrom = (instruction: Instruction) =>
  instruction instanceof Copy ? (instruction.getFromFlag()?.getValue() ?? undefined) : undefined;
/** ENV of the runtime stage (`ENV A=1 B=2`, continuation lines included). */
const RUNTIME_ENV: Record<string, string> = Object.fromEntries(
  inRuntime("ENV").flatMap((i) =>
    i instanceof Env ? i.getProperties().map((p) => [p.getName(), p.getValue() ?? ""]) : [],
  ),
);

describe("Dockerfile", () => {
  test("dockerfile-utils finds no problem", () => {
    const diagnostics = validate(DOCKERFILE);
    assert.deepEqual(
      diagnostics.map((d) => `line ${d.range.start.line + 1}: ${d.message}`),
      [],
    );
  });

  test("multi-stage: named stages, the runtime one last, COPY --from only earlier stages", () => {
    assert.ok(STAGES.length >= 2, "at least a build and a runtime stage");
    const names = STAGES.map((s) => s.name);
    assert.equal(new Set(names).size, names.length, "stage names are unique");
    assert.equal(RUNTIME.name, "runtime");
    STAGES.forEach((stage, index) => {
      for (const copy of stage.instructions.filter((i) => i.getKeyword() === "COPY")) {
        const from = copyFrom(copy);
        if (from === undefined) continue;
        const earlier = STAGES.slice(0, index).map((s) => s.name);
        assert.ok(earlier.includes(from), copy.toString());
      }
    });
  });

  test("the base image is the Node 20 line package.json supports", () => {
    const arg = DockerfileParser.parse(DOCKERFILE)
      .getInitialARGs()
      .flatMap((a) => a.getProperties())
      .find((p) => p.getName() === "NODE_IMAGE");
    const image = arg?.getValue() ?? "";
    const match = /^node:(\d+)\.(\d+)\.(\d+)-[a-z]+-slim$/.exec(image);
    assert.ok(match, `an exact, slim Node image: ${image}`);
    const engines = JSON.parse(read("package.json")).engines.node;
    assert.equal(engines, ">=20.11");
    assert.equal(Number(match[1]), 20);
    assert.ok(Number(match[2]) >= 11);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile variable, not a template
    for (const stage of STAGES) assert.equal(stage.image, "${NODE_IMAGE}");
  });

  test("runtime: NODE_ENV=production, HOST=0.0.0.0, PORT exposed", () => {
    assert.equal(RUNTIME_ENV.NODE_ENV, "production");
    assert.equal(RUNTIME_ENV.HOST, "0.0.0.0");
    assert.deepEqual(inRuntime("EXPOSE").flatMap(argsOf), [RUNTIME_ENV.PORT]);
  });

  test("runtime: runs as a non-root user, set before the command", () => {
    const users = inRuntime("USER").flatMap(argsOf);
    assert.equal(users.length, 1);
    assert.ok(!["root", "0", "0:0"].includes(users[0] ?? "root"), `USER ${users[0]}`);
    const order = RUNTIME.instructions.map((i) => i.getKeyword());
    assert.ok(order.indexOf("USER") < order.indexOf("CMD"));
    assert.ok(order.lastIndexOf("RUN") < order.indexOf("USER"), "no RUN after USER");
  });

  test('runtime: CMD ["node","dist/main.js"] in exec form, no ENTRYPOINT', () => {
    const [cmd, ...more] = inRuntime("CMD");
    assert.equal(more.length, 0);
    assert.equal(cmd?.getRawArgumentsContent(), '["node", "dist/main.js"]');
    assert.deepEqual(JSON.parse(cmd?.getRawArgumentsContent() ?? "null"), ["node", "dist/main.js"]);
    assert.equal(inRuntime("ENTRYPOINT").length, 0);
  });

  test("runtime: HEALTHCHECK asks /healthz on the service's port", () => {
    const [healthcheck, ...more] = inRuntime("HEALTHCHECK");
    assert.equal(more.length, 0);
    const text = healthcheck?.getRawArgumentsContent() ?? "";
    assert.match(text, /CMD \[/);
    const command = JSON.parse(text.slice(text.indexOf("[")));
    assert.equal(command[0], "node");
    assert.match(
      command.at(-1),
      /fetch\('http:\/\/127\.0\.0\.1:' \+ \(process\.env\.PORT \|\| 8080\) \+ '\/healthz'\)/,
    );
  });

  test("runtime: production dependencies only, the build's output copied in", () => {
    const runs = STAGES.flatMap((s) =>
      s.instructions
        .filter((i) => i.getKeyword() === "RUN")
        .map((i) => [s.name, i.getRawArgumentsContent()]),
    );
    assert.ok(runs.some(([stage, run]) => stage === "deps" && /npm ci --omit=dev/.test(run ?? "")));
    assert.ok(
      !runs.some(([stage, run]) => stage === "runtime" && /npm (ci|install)/.test(run ?? "")),
    );
    const copied = inRuntime("COPY").map((i) => [`--from=${copyFrom(i)}`, ...argsOf(i)].join(" "));
    for (const expected of [
      "--from=deps /app/node_modules node_modules",
      "--from=build /app/dist dist",
      "--from=build /app/gen/dist gen/dist",
    ]) {
      assert.ok(copied.includes(expected), expected);
    }
  });

  test("runtime: the PostgreSQL migrations ship beside dist/ (db migrate, the schema check)", () => {
    const copied = inRuntime("COPY").map((i) => argsOf(i).join(" "));
    assert.ok(copied.includes("migrations migrations"), copied.join("; "));
  });

  test("every file COPY takes from the context exists and .dockerignore lets it through", () => {
    const sources = STAGES.flatMap((s) => s.instructions)
      .filter((i) => i.getKeyword() === "COPY" && copyFrom(i) === undefined)
      .flatMap((i) => argsOf(i).slice(0, -1));
    assert.ok(sources.length > 0);
    for (const source of sources) {
      assert.ok(existsSync(join(REPO, source)), `${source} exists`);
      const segments = source.split("/").filter(Boolean);
      for (let i = 1; i <= segments.length; i++) {
        const prefix = segments.slice(0, i).join("/");
        assert.ok(!DOCKERIGNORE.includes(prefix), `${source} is excluded by "${prefix}"`);
      }
    }
  });
});

describe(".dockerignore and .gitignore", () => {
  test("the build context leaves out dependencies, builds, history and every secret", () => {
    for (const pattern of ["node_modules", "dist", ".git", ".env", "secrets", "*.pem"]) {
      assert.ok(DOCKERIGNORE.includes(pattern), pattern);
    }
  });

  test("git ignores what a local redis-server leaves and the compose secrets", () => {
    const ignored = read(".gitignore").split("\n");
    for (const pattern of ["dump.rdb", "appendonly.aof", "appendonlydir/", ".env", "secrets/"]) {
      assert.ok(ignored.includes(pattern), pattern);
    }
  });
});

// ---------------------------------------------------------------- compose.yaml

interface ComposeService {
  build?: string | { context: string };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  secrets?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  user?: string;
}
interface Compose {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file: string }>;
}

const COMPOSE = parseYaml(read("compose.yaml")) as Compose;
const SERVICE = COMPOSE.services["token-service"] as ComposeService;
const REDIS = COMPOSE.services.redis as ComposeService;

describe("compose.yaml", () => {
  test("valid against the Compose specification's JSON schema", () => {
    const schemaPath = fileURLToPath(
      new URL("schemas/compose.schema.json", import.meta.resolve("dclint/package.json")),
    );
    // Its "$schema" names draft-07 by an https:// id ajv does not register (ajv's
    // draft-07 meta-schema is the http:// one): the default Ajv class is draft-07.
    const { $schema: draft, ...schema } = JSON.parse(readFileSync(schemaPath, "utf8"));
    assert.match(draft, /draft-07/);
    assert.equal(schema.title, "Compose Specification");
    const ajv = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true });
    const validateCompose = ajv.compile(schema);
    const valid = validateCompose(COMPOSE);
    assert.deepEqual(validateCompose.errors ?? [], [], JSON.stringify(validateCompose.errors));
    assert.equal(valid, true);
    // The schema does catch mistakes (a misspelt key, a wrong type).
    assert.equal(validateCompose({ services: { a: { imgae: "x" } } }), false);
    assert.equal(validateCompose({ services: { a: { ports: "8080" } } }), false);
  });

  test("redis keeps its data: append-only file on a named volume, health-checked", () => {
    const command = REDIS.command ?? [];
    assert.equal(command[command.indexOf("--appendonly") + 1], "yes");
    assert.match(REDIS.image ?? "", /^redis:\d+\.\d+/);
    const [volume, target] = (REDIS.volumes?.[0] ?? "").split(":");
    assert.equal(target, "/data");
    assert.ok(volume && volume in (COMPOSE.volumes ?? {}), "a named volume, declared");
    assert.deepEqual(REDIS.healthcheck?.test, ["CMD", "redis-cli", "ping"]);
  });

  test("the service is built from the Dockerfile and waits for a healthy redis", () => {
    assert.equal(SERVICE.build, ".");
    assert.deepEqual(SERVICE.depends_on, { redis: { condition: "service_healthy" } });
    assert.equal(SERVICE.environment?.REDIS_URL, "redis://redis:6379");
    const [port] = SERVICE.ports ?? [];
    assert.equal(port?.split(":").at(-1), RUNTIME_ENV.PORT);
  });

  test("secrets are placeholders compose refuses to start without, or files kept out of git", () => {
    const env = SERVICE.environment ?? {};
    assert.equal(env.NODE_ENV, "production");
    for (const name of ["SECRETS_KEY", "INTERNAL_API_KEY"]) {
      assert.match(env[name] ?? "", new RegExp(`^\\$\\{${name}:\\?.*token-service .+\\}$`), name);
    }
    for (const [variable, secret] of [
      ["SIGNING_KEYS_FILE", "signing-keys"],
      ["CLIENTS_FILE", "clients"],
    ] as const) {
      assert.equal(env[variable], `/run/secrets/${secret}`);
      assert.ok(SERVICE.secrets?.includes(secret), secret);
      assert.match(COMPOSE.secrets?.[secret]?.file ?? "", /^\.\/secrets\/[a-z-]+\.json$/);
    }
  });

  test("the container's configuration, with secrets from the starter kit, is one production accepts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "token-service-compose-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const files: Record<string, string> = {
      "/run/secrets/signing-keys": join(dir, "signing-keys.json"),
      "/run/secrets/clients": join(dir, "clients.json"),
    };
    writeFileSync(
      files["/run/secrets/signing-keys"] as string,
      JSON.stringify({
        keys: [await generateSigningJwk("ES256"), await generateSigningJwk("RS256")],
      }),
    );
    writeFileSync(
      files["/run/secrets/clients"] as string,
      JSON.stringify({ clients: [newClientEntry({ id: "web-app" })] }),
    );
    const dotEnv: Record<string, string> = {
      SECRETS_KEY: generateSecretsKey(),
      INTERNAL_API_KEY: generateInternalApiKey(),
    };
    // Compose's interpolation of ${NAME:-default} and ${NAME:?error} from .env.
    const interpolate = (value: string) =>
      value.replace(
        /\$\{(\w+)(?::([-?])([^}]*))?\}/g,
        (_, name: string, op?: string, rest?: string) => {
          const given = dotEnv[name];
          if (given !== undefined) return given;
          if (op === "-") return rest ?? "";
          throw new Error(`compose would refuse: ${rest}`);
        },
      );
    const env = {
      ...RUNTIME_ENV,
      ...Object.fromEntries(
        Object.entries(SERVICE.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]),
      ),
    };
    const config = loadConfig(env, {
      readFile: (path) => readFileSync(files[path] ?? path, "utf8"),
    });
    assert.equal(config.host, "0.0.0.0");
    assert.equal(config.port, 8080);
    assert.deepEqual(config.store, { kind: "redis", url: "redis://redis:6379" });
    assert.deepEqual(Object.values(config.devDefaults), [false, false, false, false, false]);
    assert.throws(
      () => interpolate(String(SERVICE.environment?.SECRETS_KEY).replace("SECRETS_KEY", "UNSET")),
      /compose would refuse/,
    );
  });
});

// ---------------------------------------------------------------- compose.postgres.yaml

describe("compose.postgres.yaml", () => {
  const compose = parseYaml(read("compose.postgres.yaml")) as Compose;
  const service = compose.services["token-service"] as ComposeService;
  const migrate = compose.services.migrate as ComposeService;
  const postgres = compose.services.postgres as ComposeService;
  /** What the compose file's ${NAME:?…} placeholders get from .env. */
  const dotEnv: Record<string, string> = {
    SECRETS_KEY: generateSecretsKey(),
    INTERNAL_API_KEY: generateInternalApiKey(),
    POSTGRES_PASSWORD: "admin-password-0123456789",
    DATABASE_PASSWORD: "service-password-0123456789",
  };
  const interpolate = (value: string, env = dotEnv) =>
    value.replace(
      /\$\{(\w+)(?::([-?])([^}]*))?\}/g,
      (_, name: string, op?: string, rest?: string) => {
        const given = env[name];
        if (given !== undefined) return given;
        if (op === "-") return rest ?? "";
        throw new Error(`compose would refuse: ${rest}`);
      },
    );

  test("valid against the Compose specification's JSON schema", () => {
    const schemaPath = fileURLToPath(
      new URL("schemas/compose.schema.json", import.meta.resolve("dclint/package.json")),
    );
    const { $schema: _draft, ...schema } = JSON.parse(readFileSync(schemaPath, "utf8"));
    const validateCompose = new Ajv({
      allErrors: true,
      strict: false,
      allowUnionTypes: true,
    }).compile(schema);
    validateCompose(compose);
    assert.deepEqual(validateCompose.errors ?? [], []);
  });

  test("postgres keeps its data on a named volume, durable commits, health-checked", () => {
    assert.match(postgres.image ?? "", /^postgres:\d+/);
    const [volume, target] = (postgres.volumes?.[0] ?? "").split(":");
    assert.equal(target, "/var/lib/postgresql/data");
    assert.ok(volume && volume in (compose.volumes ?? {}), "a named volume, declared");
    const command = (postgres.command ?? []).join(" ");
    assert.match(command, /-c fsync=on/);
    assert.match(command, /-c synchronous_commit=on/);
    assert.deepEqual(postgres.healthcheck?.test.slice(0, 2), ["CMD", "pg_isready"]);
    // The service's role (not a superuser) is made by the mounted init script.
    const init = postgres.volumes?.find((v) => v.includes("docker-entrypoint-initdb.d"));
    const script = init?.split(":")[0] ?? "";
    assert.ok(existsSync(join(REPO, script)), script);
    assert.match(read(script), /CREATE ROLE token_service LOGIN PASSWORD :'password';/);
    assert.doesNotMatch(read(script), /SUPERUSER/);
  });

  test("the schema is migrated before the service starts, with the same DATABASE_URL", () => {
    assert.deepEqual(migrate.command, ["token-service", "db", "migrate"]);
    assert.deepEqual(migrate.depends_on, { postgres: { condition: "service_healthy" } });
    assert.deepEqual(service.depends_on, {
      migrate: { condition: "service_completed_successfully" },
      postgres: { condition: "service_healthy" },
    });
    assert.equal(migrate.environment?.DATABASE_URL, service.environment?.DATABASE_URL);
    assert.equal(service.environment?.REDIS_URL, undefined, "one store at a time");
    assert.throws(() => {
      const { DATABASE_PASSWORD: _unset, ...withoutPassword } = dotEnv;
      interpolate(String(service.environment?.DATABASE_URL), withoutPassword);
    }, /compose would refuse: set DATABASE_PASSWORD/);
  });

  test("the container's configuration is one production accepts, on PostgreSQL", async () => {
    const dir = mkdtempSync(join(tmpdir(), "token-service-compose-pg-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const files: Record<string, string> = {
      "/run/secrets/signing-keys": join(dir, "signing-keys.json"),
      "/run/secrets/clients": join(dir, "clients.json"),
    };
    writeFileSync(
      files["/run/secrets/signing-keys"] as string,
      JSON.stringify({
        keys: [await generateSigningJwk("ES256"), await generateSigningJwk("RS256")],
      }),
    );
    writeFileSync(
      files["/run/secrets/clients"] as string,
      JSON.stringify({ clients: [newClientEntry({ id: "web-app" })] }),
    );
    const env = {
      ...RUNTIME_ENV,
      ...Object.fromEntries(
        Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]),
      ),
    };
    const config = loadConfig(env, {
      readFile: (path) => readFileSync(files[path] ?? path, "utf8"),
    });
    assert.deepEqual(config.store, {
      kind: "postgres",
      url: "postgres://token_service:service-password-0123456789@postgres:5432/token_service",
      poolSize: 10,
      statementTimeoutMs: 2000,
      connectTimeoutMs: 2000,
    });
    assert.deepEqual(Object.values(config.devDefaults), [false, false, false, false, false]);
  });
});
