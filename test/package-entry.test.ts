// `import { createBroker } from "wasmq"` from an installed package: the repo is
// packed (`npm pack`, so only package.json "files" ship), the tarball is
// installed into an empty project, and a child process there imports the
// package by name, starts a broker on LMDB, and a real client talks to it.
//
// Why `npm ci` with a lockfile rather than `npm install --offline <tarball>`:
// the tests must not need the network, and `npm ci` of this repo fills the
// npm cache with the dependencies' tarballs only (by integrity), not with the
// registry metadata `npm install` needs to resolve version ranges. So the test
// writes a lockfile for the empty project from this repo's own (the versions
// this repo is tested with) plus the tarball, and `npm ci --offline` installs
// exactly that from the cache.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { promisify } from "node:util";
import { collect, connect, end, ROOT, scratchDir, subscribe } from "./helpers.js";

const run = promisify(execFile);

interface LockEntry {
  dev?: boolean;
  link?: boolean;
  [key: string]: unknown;
}

/** Pack the repo, write the empty project and its lockfile, install offline; returns the project folder. */
async function installPacked(): Promise<string> {
  const dir = scratchDir("wasmq-pack-");
  // --ignore-scripts: `prepare` would rebuild everything; dist/ is already built by the test run.
  await run("npm", ["pack", "--ignore-scripts", "--pack-destination", dir], { cwd: ROOT });
  const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  assert.ok(tarball, "npm pack wrote a tarball");
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string; dependencies: Record<string, string> };
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };
  const app = join(dir, "app");
  mkdirSync(app);
  const spec = `file:../${tarball}`;
  const packages: Record<string, unknown> = {
    "": { name: "app", dependencies: { wasmq: spec } },
    "node_modules/wasmq": {
      version: pkg.version,
      resolved: spec,
      integrity: `sha512-${createHash("sha512").update(readFileSync(join(dir, tarball))).digest("base64")}`,
      dependencies: pkg.dependencies,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === "" || entry.dev || entry.link) continue;
    // With omit-lockfile-registry-resolved the lock has no tarball URLs, and npm would ask the registry for
    // metadata to find them: give the registry URL so the tarball comes from the cache by its integrity.
    const name = (entry.name as string | undefined) ?? path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
    packages[path] = { resolved: `https://registry.npmjs.org/${name}/-/${name.split("/").pop()}-${entry.version as string}.tgz`, ...entry };
  }
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module", dependencies: { wasmq: spec } }));
  writeFileSync(join(app, "package-lock.json"), JSON.stringify({ name: "app", lockfileVersion: 3, requires: true, packages }));
  await run("npm", ["ci", "--offline", "--no-audit", "--no-fund", "--ignore-scripts"], { cwd: app });
  return app;
}

// The embedding program: imports the package by name, starts a broker, prints its port, closes on "close".
const PROGRAM = `
import { createBroker, ConfigError, VERSION } from "wasmq";
import { createLmdbPersistence } from "wasmq/persistence";
import { PluginChain } from "wasmq/host";
import { Verdict } from "wasmq/native";
import { readFileSync } from "node:fs";
const installed = JSON.parse(readFileSync(new URL(import.meta.resolve("wasmq/package.json")), "utf8"));
let badKey = null;
try { await createBroker({ prot: 1 }); } catch (err) { badKey = err instanceof ConfigError ? err.message : String(err); }
const broker = await createBroker({ port: 0, ws: false, sys: false, persistence: "lmdb", data: process.argv[2], log: { level: "silent" } });
console.log(JSON.stringify({
  port: broker.port("tcp"), version: VERSION, installedVersion: installed.version, badKey,
  subpaths: [typeof createLmdbPersistence, typeof PluginChain.load, typeof Verdict.Continue],
  from: import.meta.resolve("wasmq"),
}));
process.stdin.setEncoding("utf8").on("data", async (line) => {
  if (line.trim() !== "close") return;
  await broker.close();
  console.log(JSON.stringify({ closed: true }));
});
`;

describe("the wasmq package", { timeout: 180_000 }, () => {
  let app: string;
  before(async () => {
    app = await installPacked();
  });

  test("an installed package: import { createBroker } from \"wasmq\" starts a broker a client can use, and close() stops it", async () => {
    writeFileSync(join(app, "main.js"), PROGRAM);
    const data = join(scratchDir(), "data");
    const child = spawn(process.execPath, ["main.js", data], { cwd: app, stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const lines: string[] = [];
    let wake: (() => void) | null = null;
    let buffer = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      buffer += d;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        lines.push(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        wake?.();
      }
    });
    const exited = new Promise<number | null>((r) => child.once("exit", r));
    const nextLine = async (): Promise<Record<string, unknown>> => {
      while (lines.length === 0) {
        const ended = await Promise.race([new Promise<false>((r) => (wake = () => r(false))), exited.then(() => true)]);
        if (ended && lines.length === 0) throw new Error(`the program exited: ${stderr}`);
      }
      return JSON.parse(lines.shift()!) as Record<string, unknown>;
    };
    try {
      const started = await nextLine();
      assert.match(String(started.from), /\/app\/node_modules\/wasmq\/dist\/broker\/index\.js$/, "resolved from the installed package, not the repo");
      assert.equal(started.version, started.installedVersion);
      assert.match(String(started.badKey), /createBroker options: unknown key "prot"/);
      assert.deepEqual(started.subpaths, ["function", "function", "number"]);

      const url = `mqtt://127.0.0.1:${started.port as number}`;
      const sub = await connect(url, { clientId: "embedded-sub" });
      const got = collect(sub);
      await subscribe(sub, "embedded/#", 1);
      const pub = await connect(url, { clientId: "embedded-pub" });
      await pub.publishAsync("embedded/hello", "from an installed package", { qos: 1 });
      await got.waitFor(1);
      assert.equal(got.messages[0]!.payload.toString(), "from an installed package");
      await end(sub, pub);

      child.stdin.write("close\n");
      assert.deepEqual(await nextLine(), { closed: true });
      child.stdin.end();
      assert.equal(await exited, 0, stderr);
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("the types resolve: a TypeScript program importing \"wasmq\" type-checks", async () => {
    writeFileSync(
      join(app, "typed.ts"),
      `import { createBroker, type CreateBrokerOptions, type RunningBroker } from "wasmq";
const options: CreateBrokerOptions = { port: 0, ws: false, persistence: "memory" };
const broker: Promise<RunningBroker> = createBroker(options);
void broker;
`,
    );
    writeFileSync(join(app, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ["typed.ts"] }));
    const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
    const result = await run(process.execPath, [tsc, "-p", join(app, "tsconfig.json")], { cwd: app }).then(
      () => "",
      (err: Error & { stdout?: string }) => err.stdout ?? err.message,
    );
    assert.equal(result, "");
  });
});
