// The package as a user gets it: `npm pack` the repository, install the tarball
// into an empty folder offline (from the npm cache), then `npx wasmq --help`,
// start a broker with `npx wasmq`, scaffold a standalone plugin project with
// `npx wasmq plugin new`, and build, test, inspect, sign and verify it there —
// without this checkout.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ROOT, tempDir } from "./helpers.js";

interface Run {
  code: number | null;
  out: string;
  err: string;
}

function run(cmd: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    // Without NODE_TEST_CONTEXT: the project's own `node --test` must report as it would for its author, not to this runner.
    const env: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: "false" };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"], env });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.once("exit", (code) => resolve({ code, out, err }));
  });
}

const ok = (r: Run, what: string) => assert.equal(r.code, 0, `${what} failed:\n${r.out}\n${r.err}`);

/** wasmq's `overrides` with each "$name" reference replaced by the spec npm would use (arborist's lookup order). */
function resolvedOverrides(pkg: Record<string, unknown>): Record<string, unknown> {
  const sections = ["devDependencies", "optionalDependencies", "dependencies", "peerDependencies"].map((k) => (pkg[k] ?? {}) as Record<string, string>);
  return JSON.parse(JSON.stringify(pkg.overrides ?? {}), (_key, value: unknown) => {
    if (typeof value !== "string" || !value.startsWith("$")) return value;
    const spec = sections.map((deps) => deps[value.slice(1)]).find((v) => v !== undefined);
    if (spec === undefined) throw new Error(`package.json overrides: "${value}" names no dependency of wasmq`);
    return spec;
  }) as Record<string, unknown>;
}

test("README's Embedding section states wasmq's overrides as an app needs them", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Record<string, unknown>;
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const snippet = /`("overrides": \{.*?\} \})`/s.exec(readme);
  assert.ok(snippet, "README.md shows an overrides snippet");
  assert.deepEqual((JSON.parse(`{${snippet[1]}}`) as { overrides: unknown }).overrides, resolvedOverrides(pkg));
});

/**
 * A lockfile for the empty folder: the tarball plus wasmq's production
 * dependencies exactly as the repository's lockfile pins them, with registry
 * URLs, so `npm install --offline` finds every tarball in the npm cache
 * without asking the registry for metadata.
 */
function writeAppFiles(app: string, tarball: string): void {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, Record<string, unknown>> };
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Record<string, unknown>;
  const spec = `file:${tarball}`;
  const integrity = `sha512-${createHash("sha512").update(readFileSync(tarball)).digest("base64")}`;
  const packages: Record<string, unknown> = {
    "": { name: "app", dependencies: { wasmq: spec } },
    "node_modules/wasmq": { version: pkg.version, resolved: spec, integrity, dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path || entry.dev || entry.link) continue;
    const name = (entry.name as string | undefined) ?? path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
    packages[path] = { resolved: `https://registry.npmjs.org/${name}/-/${name.split("/").pop()}-${entry.version as string}.tgz`, ...entry };
  }
  // wasmq's overrides (aedes' optional peer range for aedes-persistence-redis, older than the major
  // wasmq uses) apply only at the root, so the app states them as README.md "Embedding" says. Without them
  // npm settles the peer conflict by fetching the package's metadata, which an offline install
  // only finds in a cache that already happens to hold it (ENOTCACHED on a fresh machine).
  const overrides = resolvedOverrides(pkg);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, dependencies: { wasmq: spec }, overrides }, null, 2));
  writeFileSync(join(app, "package-lock.json"), JSON.stringify({ name: "app", lockfileVersion: 3, requires: true, packages }, null, 2));
}

describe("the packed package, installed offline into an empty folder", { timeout: 300_000 }, () => {
  const dir = tempDir("wasmq-pack-");
  const app = join(dir, "app");
  const project = join(app, "p");
  const npx = (args: string[], cwd = app) => run("npx", ["--offline", "--no-install", "wasmq", ...args], cwd);

  before(async () => {
    const packed = await run("npm", ["pack", "--ignore-scripts", "--pack-destination", dir], ROOT);
    ok(packed, "npm pack");
    const tarball = join(dir, packed.out.trim().split("\n").pop()!);
    assert.ok(existsSync(tarball), tarball);
    mkdirSync(app);
    writeAppFiles(app, tarball);
    ok(await run("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball], app), "npm install --offline");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("npx wasmq --help", async () => {
    const r = await npx(["--help"]);
    ok(r, "wasmq --help");
    assert.match(r.out, /wasmq plugin COMMAND/);
  });

  test("npx wasmq starts a broker (the packaged default config and acl plugin) and stops on SIGTERM", async () => {
    const data = join(dir, "data");
    const child = spawn(join(app, "node_modules/.bin/wasmq"), ["--port", "0", "--ws-port", "0", "--data", data], { cwd: app, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("wasmq ready")) resolve();
      });
      child.once("exit", (code) => reject(new Error(`the broker exited with ${code}:\n${out}\n${err}`)));
    });
    assert.match(out, /"plugins":\["acl"\]/);
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
  });

  test("npx wasmq plugin new p scaffolds a project that builds and passes its own test", async () => {
    ok(await npx(["plugin", "new", "p"]), "plugin new");
    for (const f of ["package.json", "asconfig.json", "manifest.json", "assembly/plugin.ts", "test/plugin.test.mjs", "README.md"]) assert.ok(existsSync(join(project, f)), f);
    assert.equal((JSON.parse(readFileSync(join(project, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies.wasmq, "^0.1.0");
    const tested = await run("npm", ["test"], project);
    ok(tested, "npm test in the project");
    assert.match(tested.out, /# pass 2/);
    assert.match(tested.out, /# fail 0/);
  });

  test("the project's build inspects, signs and verifies with the packaged CLI", async () => {
    const inspected = await run("npm", ["run", "--silent", "inspect"], project);
    ok(inspected, "npm run inspect");
    assert.match(inspected.out, /manifest: +p 0\.1\.0/);
    assert.match(inspected.out, /hooks: +publish/);
    ok(await run("npm", ["run", "--silent", "keygen"], project), "npm run keygen");
    ok(await run("npm", ["run", "--silent", "sign"], project), "npm run sign");
    const verified = await npx(["plugin", "verify", "build/p.wasm", "--pub", "keys/plugin-signing.pub"], project);
    ok(verified, "verify");
    assert.match(verified.out, /signature OK/);
  });
});
