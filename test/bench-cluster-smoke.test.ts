// Smoke run of `npm run bench:cluster` with a tiny window: real redis-server,
// three wasmq processes, the load generator; every setup delivers, no
// acknowledged QoS 1 message is lost, the JSON is well formed. No speed is asserted.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT, tempDir } from "./helpers.js";

test("npm run bench:cluster: a tiny run of every setup delivers and loses no QoS 1 message", { timeout: 180_000 }, async () => {
  const dir = tempDir("wasmq-bench-cluster-smoke-");
  try {
    const out = join(dir, "cluster.json");
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [join(ROOT, "dist/bench/cluster.js"), "--reps", "1", "--duration", "0.3", "--warmup", "0.1", "--out", out], { cwd: ROOT }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stdout, stderr }),
      );
    });
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(stdout, /\| p2p-qos1-64B \| cluster-cross \| \d+ \|/);
    const json = JSON.parse(readFileSync(out, "utf8")) as { rows: { setup: string; qos: number; result: { deliveries: number; lostQos1: number } }[] };
    assert.equal(json.rows.length, 6);
    for (const r of json.rows) {
      assert.ok(r.result.deliveries > 0, `${r.setup} qos${r.qos} delivered`);
      assert.equal(r.result.lostQos1, 0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
