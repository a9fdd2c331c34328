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

/**
 * The old generation's allocation limit V8 sets after a full collection of a
 * ~19 MB heap, in KB (--trace-gc-verbose's "[HeapController] Limit: ... new
 * limit: N KB"). --heap-growing-percent=10 pins the growth to V8's minimum
 * (1.1), the factor it chooses on its own under a broker's steady load, when
 * little is promoted (bench/README.md "The 16 KB path, part 5").
 */
function limitAfterFullGcKB(flags: readonly string[]): number {
  const script = "const keep = []; for (let i = 0; i < 16 * 1024; i++) keep.push(new Array(120).fill(i)); gc();";
  const out = execFileSync(process.execPath, ["--expose-gc", "--trace-gc-verbose", "--heap-growing-percent=10", ...flags, "-e", script], { encoding: "utf8" });
  const limits = [...out.matchAll(/\[HeapController\] Limit: old size: \d+ KB, new limit: (\d+) KB/g)].map((m) => Number(m[1]));
  assert.ok(limits.length > 0, `V8 reported a limit: ${out.slice(0, 500)}`);
  return limits.at(-1)!;
}

test("--initial-old-space-size=128 keeps a small heap's old-generation limit at 128 MB after a full collection (V8 alone: live size + 24 MB)", () => {
  assert.ok(limitAfterFullGcKB(BROKER_NODE_FLAGS) >= 128 * 1024, "with the shipped flags");
  const without = limitAfterFullGcKB(BROKER_NODE_FLAGS.filter((f) => !f.startsWith("--initial-old-space-size")));
  assert.ok(without < 64 * 1024, `without the floor the limit is ${without} KB (else the flag would be pointless on this Node)`);
});
