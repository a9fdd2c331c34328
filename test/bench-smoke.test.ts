// Smoke run of both benches with tiny counts: they run end to end against real
// brokers in their own processes, produce well-formed output, every target
// delivers, and no acknowledged QoS 1 message is lost. No speed is asserted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { builtPlugins } from "../bench/plugins.js";
import { ROOT, runNode, tempDir } from "./helpers.js";

const RUN = join(ROOT, "dist/bench/run.js");
const HOOKS = join(ROOT, "dist/bench/hooks.js");
const MOSQUITTO = process.env.MOSQUITTO_BIN ?? "/usr/sbin/mosquitto";

const CONTRACT_NUMBERS = ["msgsPerSec", "p50Ms", "p99Ms", "p999Ms", "cpuSec", "rssMB"] as const;

test("npm run bench: a tiny run of every target gives well-formed JSON, deliveries and no lost QoS 1", { timeout: 240_000 }, async () => {
  const dir = tempDir("wasmq-bench-smoke-");
  try {
    const out = join(dir, "bench.json");
    const chart = join(dir, "bench.svg");
    const targets = ["aedes", "native", "wasm", "wasm-nofuel", ...(existsSync(MOSQUITTO) ? ["mosquitto"] : [])];
    const scenarios = ["p2p-qos0-64B", "p2p-qos1-64B"];
    const { code, stdout, stderr } = await runNode([RUN, "--quick", "--count", "200", "--warmup", "0.1", "--prime", "0", "--targets", targets.join(","), "--scenarios", scenarios.join(","), "--out", out, "--chart", chart]);
    assert.equal(code, 0, `bench exited ${code}\n${stdout}\n${stderr}`);
    assert.match(stdout, /scenario\s+target\s+msg\/s/, "the results table is printed");
    assert.match(stdout, /Targets \(issue #6/, "the targets are reported");
    assert.match(stderr, /\[\s*1\/\d+\] rep 1 /, "progress goes to stderr");

    const json = JSON.parse(readFileSync(out, "utf8")) as { machine: Record<string, unknown>; results: Record<string, unknown>[] };
    assert.equal(typeof json.machine.cpu, "string");
    assert.ok((json.machine.cores as number) > 0);
    assert.equal(json.machine.node, process.version);
    assert.ok(!Number.isNaN(Date.parse(json.machine.date as string)), "machine.date is a date");
    assert.ok(Array.isArray(json.results));

    for (const scenario of scenarios) {
      for (const target of targets) {
        const row = json.results.find((r) => r.scenario === scenario && r.target === target);
        assert.ok(row, `a result for ${scenario} ${target}`);
        for (const key of CONTRACT_NUMBERS) {
          assert.equal(typeof row[key], "number", `${scenario} ${target}: ${key} is a number (got ${String(row[key])})`);
          assert.ok((row[key] as number) >= 0, `${scenario} ${target}: ${key} is not negative`);
        }
        assert.ok((row.msgsPerSec as number) > 0, `${scenario} ${target} delivered messages`);
        assert.ok((row.deliveries as number) >= 200, `${scenario} ${target}: all 200 measured messages delivered (got ${String(row.deliveries)})`);
        assert.ok((row.p999Ms as number) >= (row.p50Ms as number), `${scenario} ${target}: percentiles are ordered`);
        assert.ok((row.rssMB as number) > 0, `${scenario} ${target}: peak RSS measured`);
        assert.equal(row.lostQos1, 0, `${scenario} ${target}: no acknowledged QoS 1 message lost`);
        assert.equal(row.errors, undefined, `${scenario} ${target}: no failed repetition`);
      }
    }
    const svg = readFileSync(chart, "utf8");
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    for (const target of targets) assert.ok(svg.includes(`>${target}</text>`), `chart legend names ${target}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("npm run bench: MQTT 5 clients with topic aliases both ways, the wasm-no-v5 measurement build, and the latency-tail evidence", { timeout: 240_000 }, async () => {
  const dir = tempDir("wasmq-bench-v5-smoke-");
  try {
    const out = join(dir, "bench.json");
    const targets = ["aedes", "wasm", "wasm-no-v5"];
    const scenarios = ["p2p-qos1-64B", "p2p-qos1-64B-v5-alias", "latency10k-qos0-64B"];
    const { code, stdout, stderr } = await runNode([RUN, "--quick", "--count", "300", "--warmup", "0.1", "--prime", "0", "--targets", targets.join(","), "--scenarios", scenarios.join(","), "--out", out]);
    assert.equal(code, 0, `bench exited ${code}\n${stdout}\n${stderr}`);
    assert.match(stdout, /p2p-qos1-64B-v5-alias: aedes 1\.2 refuses MQTT 5 clients; its row is the same traffic with 3\.1\.1 clients/);
    assert.match(stdout, /Targets \(issue #17/);
    assert.match(stdout, /Latency tail, per run/);
    const json = JSON.parse(readFileSync(out, "utf8")) as {
      results: Record<string, unknown>[];
      targets17: { goal: string; measured: string }[];
      runs: { scenario: string; target: string; protocol: number; aliasedDeliveries: number; broker: { loopMaxMs: number; gcCount: number } | null; generator: { loopMaxMs: number } | null }[];
    };
    for (const [scenario, target] of [
      ["p2p-qos1-64B", "wasm-no-v5"],
      ["p2p-qos1-64B-v5-alias", "aedes"],
      ["p2p-qos1-64B-v5-alias", "wasm"],
      ["latency10k-qos0-64B", "wasm"],
    ]) {
      const row = json.results.find((r) => r.scenario === scenario && r.target === target);
      assert.ok(row, `a result for ${scenario} ${target}`);
      assert.ok((row.deliveries as number) >= 300, `${scenario} ${target}: all 300 measured messages delivered`);
      assert.equal(row.lostQos1, 0, `${scenario} ${target}: no acknowledged QoS 1 message lost`);
      assert.equal(row.errors, undefined, `${scenario} ${target}: no failed repetition`);
    }
    const run = (scenario: string, target: string) => json.runs.find((r) => r.scenario === scenario && r.target === target)!;
    assert.equal(run("p2p-qos1-64B-v5-alias", "wasm").protocol, 5);
    assert.equal(run("p2p-qos1-64B-v5-alias", "aedes").protocol, 4, "aedes ran 3.1.1");
    // wasmq offers outbound topic aliases: the subscriber saw deliveries without a topic
    assert.ok(run("p2p-qos1-64B-v5-alias", "wasm").aliasedDeliveries > 0, "the broker used topic aliases towards the subscriber");
    const tail = run("latency10k-qos0-64B", "wasm");
    assert.ok(tail.broker && tail.broker.loopMaxMs > 0, "the broker's event-loop delay was measured");
    assert.ok(tail.generator && tail.generator.loopMaxMs > 0, "the generator's event-loop delay was measured");
    const v5 = json.targets17.find((c) => c.goal.startsWith("wasm MQTT 5 / 3.1.1 throughput (p2p-qos1-64B-v5-alias"));
    assert.ok(v5 && /×/.test(v5.measured), `the v5/3.1.1 ratio is reported (${v5?.measured})`);
    const layer = json.targets17.find((c) => c.goal.includes("(p2p-qos1-64B, wasm / wasm-no-v5)"));
    assert.ok(layer && /×/.test(layer.measured), `the v5 layer's cost is reported (${layer?.measured})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("npm run bench:hooks: a tiny run measures every built plugin, native vs wasm vs wasm-nofuel", { timeout: 120_000 }, async () => {
  const dir = tempDir("wasmq-hooks-smoke-");
  try {
    const out = join(dir, "hooks.json");
    const { code, stdout, stderr } = await runNode([HOOKS, "--rounds", "1", "--time", "1", "--iterations", "2", "--sizes", "64,1024", "--calls", "2000", "--fuel-processes", "1", "--fuel-instances", "1", "--fuel-rounds", "4", "--out", out]);
    assert.equal(code, 0, `bench:hooks exited ${code}\n${stdout}\n${stderr}`);
    const json = JSON.parse(readFileSync(out, "utf8")) as {
      results: { plugin: string; hook: string; size: number | null; ns: Record<string, number>; verdict: Record<string, string> }[];
      skipped: { plugin: string }[];
      distribution: { calls: number; timer: { p50: number }; rows: { plugin: string; variant: string; dist: { calls: number; p50: number; p999: number; max: number } }[] } | null;
    };
    const plugins = builtPlugins();
    assert.ok(plugins.length > 0, "some plugin is built");
    for (const plugin of plugins) {
      const rows = json.results.filter((r) => r.plugin === plugin);
      const skipped = json.skipped.some((s) => s.plugin === plugin);
      assert.ok(rows.length > 0 || skipped, `${plugin} is measured (or reported as having no message hook)`);
      for (const r of rows) {
        for (const variant of ["native", "wasm", "wasm-nofuel"]) {
          assert.ok(r.ns[variant]! > 0, `${plugin} ${r.hook} ${r.size}: ${variant} measured`);
        }
        assert.equal(r.verdict.wasm, r.verdict.native, `${plugin} ${r.hook} ${r.size}: Wasm and native agree`);
        assert.ok(stdout.includes(plugin), `${plugin} appears in the printed table`);
      }
    }
    // The per-call distribution: every timed call counted, percentiles ordered.
    const dist = json.distribution;
    assert.ok(dist, "the per-call distribution is reported");
    assert.ok(dist.timer.p50 > 0, "the timer's own cost is measured");
    for (const plugin of ["acl", "filter", "router"].filter((p) => plugins.includes(p))) {
      for (const variant of ["native", "wasm", "wasm-nofuel"]) {
        const row: (typeof dist.rows)[number] | undefined = dist.rows.find((r) => r.plugin === plugin && r.variant === variant);
        assert.ok(row, `${plugin} ${variant}: distribution measured`);
        assert.equal(row.dist.calls, 2000);
        assert.ok(row.dist.p50 > 0 && row.dist.p50 <= row.dist.p999 && row.dist.p999 <= row.dist.max, `${plugin} ${variant}: ${JSON.stringify(row.dist)}`);
      }
    }
    assert.match(stdout, /p99\.9 ns/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
