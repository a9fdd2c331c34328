// What comes with the dashboard for operators: the Grafana dashboard in
// examples/grafana only queries metrics the broker exports, and the log is
// human-readable on request (and on a terminal) and JSON otherwise.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CLI, ROOT, startTestBroker, tempDir, type TestBroker } from "./helpers.js";
import { writeConfig } from "./broker-support.js";

describe("Grafana dashboard", { timeout: 60_000 }, () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startTestBroker({ persistence: "lmdb", metrics: { port: 0 }, plugins: [{ name: "filter", wasm: join(ROOT, "dist/plugins/filter.wasm"), watch: false, config: { action: "drop", onMissing: "pass", onInvalid: "drop", rules: [{ topic: "a/+/t", field: "v", min: 0, max: 1 }] } }] });
  });
  after(() => broker.stop());

  test("every metric a panel queries is one the broker exports", async () => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, "examples/grafana/wasmq-dashboard.json"), "utf8")) as { panels: { targets?: { expr: string }[] }[] };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    assert.ok(exprs.length > 20);
    const text = await (await fetch(`${broker.admin!.url}/metrics`)).text();
    const exported = new Set<string>();
    for (const line of text.split("\n")) {
      const m = /^# TYPE (\S+) (\S+)/.exec(line);
      if (!m) continue;
      exported.add(m[1]!);
      if (m[2] === "histogram") for (const s of ["_bucket", "_sum", "_count"]) exported.add(m[1]! + s);
    }
    const used = new Set(exprs.flatMap((e) => e.match(/\b(?:wasmq|process|nodejs)_[a-z0-9_]+/g) ?? []));
    const missing = [...used].filter((n) => !exported.has(n));
    assert.deepEqual(missing, [], "metrics the Grafana dashboard queries but the broker does not export");
  });
});

describe("log format", { timeout: 60_000 }, () => {
  function firstLines(env: Record<string, string>): Promise<string[]> {
    const dir = tempDir();
    const config = writeConfig(dir, "c.json", { port: 0, persistence: "memory", sys: false, plugins: [] });
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, "-c", config], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("wasmq ready")) child.kill("SIGKILL");
      });
      child.once("exit", () => {
        rmSync(dir, { recursive: true, force: true });
        resolve(out.split("\n").filter((l) => l.trim()));
      });
      child.once("error", reject);
    });
  }

  test("WASMQ_LOG_FORMAT=pretty prints pino-pretty's lines; a pipe gets JSON by default", async () => {
    const pretty = await firstLines({ WASMQ_LOG_FORMAT: "pretty" });
    const ready = pretty.find((l) => l.includes("wasmq ready"));
    assert.ok(ready, pretty.join("\n"));
    assert.match(ready, /INFO/);
    assert.throws(() => JSON.parse(ready));
    const json = await firstLines({});
    const line = json.find((l) => l.includes("wasmq ready"));
    assert.ok(line);
    assert.equal((JSON.parse(line) as { msg: string; level: number }).level, 30);
  });
});
