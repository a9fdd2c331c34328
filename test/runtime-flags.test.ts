// The V8 flags the broker ships with (broker/runtime-flags.ts) reach the
// process both ways users start it: `npm start` and the `wasmq` command's `#!`
// line; and the flag does what the module says on this Node.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BROKER_NODE_FLAGS } from "../broker/runtime-flags.js";
import { CliBroker, killSpawned } from "./broker-support.js";
import { CLI, tempDir } from "./helpers.js";

const ROOT = join(CLI, "..", "..", "..");
const dir = tempDir("wasmq-flags-");
/** The young generation (two semi-spaces) V8 reports with --min-semi-space-size=16 is at least this. */
const SIXTEEN_MB = 16 * 1024 * 1024;
after(killSpawned);

/** Start the CLI through `launcher` and read the started process's command line from /proc (what Node was given, flags included). */
async function commandLineOf(launcher: readonly string[]): Promise<string[]> {
  const broker = new CliBroker(["--port", "0", "--ws-port", "0", "--data", join(dir, `data-${launcher.length}`)], undefined, launcher);
  try {
    await broker.ready();
    return readFileSync(`/proc/${broker.child.pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } finally {
    broker.child.kill("SIGTERM");
    await broker.exited;
  }
}

/** The shipped flags are Node's options, before the script, in the broker process. */
function assertFlagsGiven(argv: string[]): void {
  const script = argv.findIndex((a) => a.endsWith("cli.js"));
  assert.ok(script > 0, `the CLI runs: ${argv.join(" ")}`);
  for (const flag of BROKER_NODE_FLAGS) assert.ok(argv.slice(1, script).includes(flag), `${flag} given to Node: ${argv.join(" ")}`);
}

test("npm start runs the CLI with the shipped flags", async () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
  const words = pkg.scripts.start!.split(/\s+/);
  assert.equal(words[0], "node");
  assert.equal(words.at(-1), "dist/broker/cli.js");
  assert.deepEqual(words.slice(1, -1), [...BROKER_NODE_FLAGS]);
  assertFlagsGiven(await commandLineOf([process.execPath, ...words.slice(1, -1)]));
});

test("the wasmq command's #! line passes the shipped flags (as the kernel runs it: env -S)", async () => {
  const first = readFileSync(CLI, "utf8").split("\n", 1)[0]!;
  assert.equal(first, `#!/usr/bin/env -S node ${BROKER_NODE_FLAGS.join(" ")}`);
  // The kernel hands everything after the interpreter to it as one argument.
  const [interpreter, rest] = [first.slice(2).split(" ", 1)[0]!, first.slice(2).split(" ").slice(1).join(" ")];
  assertFlagsGiven(await commandLineOf([interpreter, rest]));
});

test("--min-semi-space-size=16 starts V8's young generation at 16 MB per semi-space (default: 1 MB)", () => {
  const newSpace = (flags: readonly string[]) =>
    Number(execFileSync(process.execPath, [...flags, "-e", `process.stdout.write(String(require("v8").getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size))`], { encoding: "utf8" }));
  assert.ok(newSpace(BROKER_NODE_FLAGS) >= SIXTEEN_MB, "with the shipped flags");
  assert.ok(newSpace([]) < SIXTEEN_MB, "without them (else the flag would be pointless on this Node)");
});
