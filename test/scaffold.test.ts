// `npm run plugin:new -- NAME` from a plugin author's seat: the scaffold lands in
// the real plugins-as/ and test/, builds with the real AssemblyScript toolchain,
// type-checks under the project's strict settings, runs in the harness (Wasm and
// native twin) and passes its own generated test against a real broker. Every
// generated file is removed afterwards, even when a step fails.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import ts from "typescript";
import { runPlugin } from "../host/harness.js";
import { invalidPluginName } from "../host/tools/new-plugin.js";
import { native, ROOT, wasm } from "./helpers.js";

const PREFIX = "zz-scaffold-";
const NAME = `${PREFIX}${process.pid}`;
const NEW_PLUGIN = join(ROOT, "dist/host/tools/new-plugin.js");
const BUILD = join(ROOT, "dist/host/tools/build-plugins.js");
const HARNESS = join(ROOT, "dist/host/tools/harness.js");

function generated(name: string): string[] {
  return [
    join(ROOT, "plugins-as", name),
    join(ROOT, "test", `plugin-${name}.test.ts`),
    join(ROOT, "dist/plugins", `${name}.wasm`),
    join(ROOT, "dist/plugins-as", name),
    ...["js", "js.map", "d.ts"].map((ext) => join(ROOT, "dist/test", `plugin-${name}.test.${ext}`)),
  ];
}

function removeGenerated(name: string): void {
  for (const path of generated(name)) rmSync(path, { recursive: true, force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A run killed before its `after` leaves its plugin behind, and a `tsc` started
 * elsewhere while the generated test existed may write its output after our
 * cleanup: a later run clears what belongs to runs that are gone.
 */
function removeLeftoversOfDeadRuns(): void {
  const names = new Set<string>();
  for (const dir of ["plugins-as", "dist/plugins-as", "dist/plugins", "dist/test", "test"]) {
    const path = join(ROOT, dir);
    if (!existsSync(path)) continue;
    for (const entry of readdirSync(path)) {
      const match = /^(?:plugin-)?(zz-scaffold-\d+)(?:\.|$)/.exec(entry);
      if (match) names.add(match[1]!);
    }
  }
  for (const name of names) {
    const pid = Number(name.slice(PREFIX.length));
    if (pid !== process.pid && !alive(pid)) removeGenerated(name);
  }
}

function run(script: string, args: string[]) {
  const env = { ...process.env };
  // Without this a nested `node --test` reports to us in the runner's private protocol.
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, [script, ...args], { cwd: ROOT, encoding: "utf8", env, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Type-check the scaffold's TypeScript with the project's options and emit it to dist/, as `tsc` would. */
function compileTypeScript(files: string[]): string[] {
  const parsed = ts.getParsedCommandLineOfConfigFile(join(ROOT, "tsconfig.json"), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    },
  });
  assert.ok(parsed, "tsconfig.json parses");
  const options = { ...parsed.options, incremental: false, declaration: false, sourceMap: false };
  delete options.tsBuildInfoFile;
  const program = ts.createProgram(files, options);
  const errors = ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: ` : "";
    return `${where}${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
  });
  if (errors.length === 0) {
    for (const file of files) {
      const emitted = program.emit(program.getSourceFile(file));
      if (emitted.emitSkipped) errors.push(`${file}: not emitted`);
    }
  }
  return errors;
}

describe("plugin scaffold (npm run plugin:new)", () => {
  before(() => {
    removeLeftoversOfDeadRuns();
    removeGenerated(NAME);
  });
  after(() => removeGenerated(NAME));

  test("scaffolds the plugin folder and its test, and prints them with the next steps", () => {
    const r = run(NEW_PLUGIN, [NAME]);
    assert.equal(r.code, 0, r.stderr);
    const files = ["plugin.ts", "native.ts", "config.example.json", "messages.jsonl", "README.md"].map((f) => `plugins-as/${NAME}/${f}`);
    files.push(`test/plugin-${NAME}.test.ts`);
    for (const f of files) {
      assert.ok(existsSync(join(ROOT, f)), `${f} exists`);
      assert.match(r.stdout, new RegExp(`^  ${f.replaceAll(".", "\\.")}$`, "m"), `the output names ${f}`);
    }
    assert.match(r.stdout, new RegExp(`npm run build:plugins -- ${NAME}`));
    assert.match(r.stdout, new RegExp(`npm run harness -- --plugin ${NAME} plugins-as/${NAME}/messages\\.jsonl`));
    assert.match(r.stdout, new RegExp(`"wasm": "dist/plugins/${NAME}\\.wasm"`));
    const plugin = readFileSync(join(ROOT, "plugins-as", NAME, "plugin.ts"), "utf8");
    assert.ok(!plugin.includes("{{"), "no template placeholder is left in plugin.ts");
    assert.match(plugin, new RegExp(`npm run build:plugins -- ${NAME}`));
    const config = JSON.parse(readFileSync(join(ROOT, "plugins-as", NAME, "config.example.json"), "utf8")) as Record<string, unknown>;
    assert.deepEqual(config, { topic: "sensors/#", field: "value", max: 100 });
  });

  test("refuses the same name again and leaves the existing plugin alone", () => {
    const before = readFileSync(join(ROOT, "plugins-as", NAME, "plugin.ts"), "utf8");
    const r = run(NEW_PLUGIN, [NAME]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`plugins-as/${NAME}/ already exists`));
    assert.equal(readFileSync(join(ROOT, "plugins-as", NAME, "plugin.ts"), "utf8"), before);
  });

  test("the native twin and the generated test type-check under the project's settings", () => {
    const errors = compileTypeScript([join(ROOT, "plugins-as", NAME, "native.ts"), join(ROOT, "test", `plugin-${NAME}.test.ts`)]);
    assert.deepEqual(errors, []);
    assert.ok(existsSync(native(NAME)));
    assert.ok(existsSync(join(ROOT, "dist/test", `plugin-${NAME}.test.js`)));
    // Compiled: the source leaves test/ now rather than in `after`, so a tsc run elsewhere
    // in the tree has the least chance to emit it again once we are gone.
    rmSync(join(ROOT, "test", `plugin-${NAME}.test.ts`));
  });

  test("the AssemblyScript plugin builds", () => {
    const r = run(BUILD, [NAME]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`✓ ${NAME} → dist/plugins/${NAME}\\.wasm`));
    assert.ok(existsSync(wasm(NAME)));
  });

  test("the Wasm build and the native twin give the example's verdicts in the harness", async () => {
    const config = { topic: "sensors/#", max: 100 };
    const messages = [
      { topic: "sensors/1/temp", payload: { value: 99.5 } },
      { topic: "sensors/1/temp", payload: { value: 100.5 } },
      { topic: "sensors/1/temp", payload: { other: 1e9 } },
      { topic: "other/1", payload: { value: 1e9 } },
    ];
    const expected = ["continue", "drop", "continue", "continue"];
    const fromWasm = await runPlugin({ name: NAME, wasm: wasm(NAME), config }, messages);
    const fromNative = await runPlugin({ name: NAME, native: native(NAME), config }, messages);
    assert.deepEqual(fromWasm.map((r) => r.verdict), expected);
    assert.deepEqual(fromNative, fromWasm);
  });

  test("the harness command the scaffold prints works on its sample messages", () => {
    const r = run(HARNESS, ["--plugin", NAME, join("plugins-as", NAME, "messages.jsonl")]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        "#0 publish sensors/1/temp → continue",
        "#1 publish sensors/1/temp → drop",
        "    log debug: dropped sensors/1/temp: value above max",
        "#2 publish sensors/1/temp → continue",
        "#3 publish other/1 → continue",
        "",
      ].join("\n"),
    );
  });

  test("the generated test passes (harness on both builds, a real broker round trip)", () => {
    const r = run("--test", [join(ROOT, "dist/test", `plugin-${NAME}.test.js`)]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^# fail 0$/m);
    const passed = Number(/^# pass (\d+)$/m.exec(r.stdout)?.[1]);
    assert.ok(passed >= 5, `expected the generated test's 5 cases to pass, got ${passed}`);
  });

  test("invalid names are refused with a reason, and nothing is created", () => {
    const cases: [string, RegExp][] = [
      ["Temp", /not a valid plugin name/],
      ["temp_limit", /not a valid plugin name/],
      ["1temp", /not a valid plugin name/],
      ["-temp", /not a valid plugin name/],
      ["temp-", /not a valid plugin name/],
      ["temp--limit", /not a valid plugin name/],
      ["../escape", /not a valid plugin name/],
      ["", /not a valid plugin name/],
      ["a".repeat(65), /too long/],
      ["sdk", /reserved|already exists/],
      ["acl", /plugins-as\/acl\/ already exists/],
    ];
    for (const [name, reason] of cases) assert.match(invalidPluginName(name) ?? "accepted", reason, `name ${JSON.stringify(name)}`);
    assert.equal(invalidPluginName("temp-limit-2"), null);

    const aclBefore = readFileSync(join(ROOT, "plugins-as/acl/plugin.ts"), "utf8");
    for (const args of [["Bad_Name"], ["acl"], [], ["one", "two"]]) {
      const r = run(NEW_PLUGIN, args);
      assert.equal(r.code, 2, `plugin:new ${args.join(" ")} must fail`);
      assert.match(r.stderr, /^plugin:new: /);
    }
    assert.equal(existsSync(join(ROOT, "plugins-as/Bad_Name")), false);
    assert.equal(existsSync(join(ROOT, "test/plugin-Bad_Name.test.ts")), false);
    assert.equal(readFileSync(join(ROOT, "plugins-as/acl/plugin.ts"), "utf8"), aclBefore, "an existing plugin is left alone");
  });
});
