// Smoke run of the idle-connection scenario with a few hundred clients: real
// brokers in their own processes, raw clients in the generator's process,
// the standard chain (auth checks every client's password and id). It checks
// that every client got CONNACK + SUBACK, none was dropped while held, and the
// report and JSON carry the figures. No size or speed is asserted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT, runNode, tempDir } from "./helpers.js";

const RUN = join(ROOT, "dist/bench/run.js");
const MOSQUITTO = process.env.MOSQUITTO_BIN ?? "/usr/sbin/mosquitto";

test("npm run bench idle19k-conns: every target takes every client (CONNACK + SUBACK) and keeps it; KB/conn, RSS and connect rate reported", { timeout: 240_000 }, async () => {
  const dir = tempDir("wasmq-bench-idle-");
  try {
    const out = join(dir, "idle.json");
    const targets = ["aedes", "wasm", ...(existsSync(MOSQUITTO) ? ["mosquitto"] : [])];
    const { code, stdout, stderr } = await runNode([RUN, "--scenarios", "idle19k-conns", "--conns", "200", "--reps", "1", "--targets", targets.join(","), "--out", out]);
    assert.equal(code, 0, `bench exited ${code}\n${stdout}\n${stderr}`);
    assert.match(stdout, /scenario\s+target\s+conns\s+KB\/conn/, "the idle table is printed");
    assert.match(stdout, /wasm memory per idle connection ≤ 1\.0× aedes \(idle19k-conns\)/, "the #17 memory target is reported");
    assert.match(stdout, /wasm connect time ≤ 1\.0× aedes \(idle19k-conns\)/, "the #17 connect-time target is reported");

    const json = JSON.parse(readFileSync(out, "utf8")) as { idle: Record<string, unknown>[] };
    for (const target of targets) {
      const row = json.idle.find((r) => r.scenario === "idle19k-conns" && r.target === target);
      assert.ok(row, `a result for ${target}`);
      assert.equal(row.errors, undefined, `${target}: no failed run (${JSON.stringify(row.errors)})`);
      assert.equal(row.conns, 200, `${target}: all 200 clients connected and subscribed`);
      assert.equal(row.dropped, 0, `${target}: no client closed while held idle`);
      assert.equal(row.unexpected, 0, `${target}: no idle client was sent anything`);
      for (const key of ["kbPerConn", "rssMB", "connectsPerSec", "cpuUsPerConn"]) {
        assert.equal(typeof row[key], "number", `${target}: ${key} is a number (got ${String(row[key])})`);
      }
      assert.ok((row.rssMB as number) > 0 && (row.connectsPerSec as number) > 0, `${target}: RSS and connect rate measured`);
      if (target !== "mosquitto") assert.equal(typeof row.heapKbPerConn, "number", `${target}: heap per connection measured`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("npm run bench --conns refuses more clients than a process may hold here", async () => {
  const { code, stderr } = await runNode([RUN, "--scenarios", "idle19k-conns", "--conns", "50000"]);
  assert.equal(code, 2);
  assert.match(stderr, /--conns must be at most 19,?200/);
});
