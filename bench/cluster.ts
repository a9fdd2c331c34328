/**
 * `npm run bench:cluster` — what the Redis hop costs. Point-to-point traffic,
 * one publisher and one subscriber, QoS 0 and QoS 1, 64 B payloads, in the same
 * invocation against:
 *
 *   standalone   one wasmq node, LMDB (the single-node default)
 *   cluster-same two-node cluster, publisher and subscriber on node a
 *   cluster-cross two-node cluster, publisher on node a, subscriber on node b
 *
 * Every broker is a real `wasmq` process started through the CLI (the cluster's
 * on a redis-server the bench starts with persistence off); the load generator
 * is bench/loadgen.ts in its own process with the same Node flags
 * (bench/generator-flags.ts), as in `npm run bench`. Reported:
 * deliveries/s, latency percentiles, and CPU seconds per 1,000 deliveries of
 * the brokers plus redis-server (from /proc) — the hop's cost in throughput,
 * latency and CPU. Options: --reps N (default 3), --duration SEC (default 2),
 * --warmup SEC (default 0.5), --out FILE.json.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { describeMachine, machineInfo } from "./machine.js";
import type { FromLoad, LoadResult, LoadSpec } from "./protocol.js";
import { BROKER_NODE_FLAGS } from "../broker/runtime-flags.js";
import { generatorNodeArgs } from "./generator-flags.js";

const CLI = fileURLToPath(new URL("../broker/cli.js", import.meta.url));
const LOADGEN = fileURLToPath(new URL("./loadgen.js", import.meta.url));
const CLK_TCK = 100;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** utime + stime of a process, in seconds. */
function cpuSec(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

interface Broker {
  child: ChildProcess;
  port: number;
}

async function startBroker(dir: string, name: string, extra: Record<string, unknown>): Promise<Broker> {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ host: "127.0.0.1", port: 0, ws: false, sys: false, data: join(dir, `data-${name}`), log: { level: "warn" }, plugins: [], ...extra }));
  const child = spawn(process.execPath, [...BROKER_NODE_FLAGS, CLI, "--config", file, "--log-level", "info"], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const m = /mqtt:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m && out.includes("wasmq ready")) resolve(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}: ${out}`)));
  });
  child.stdout!.resume();
  return { child, port };
}

function runLoad(spec: LoadSpec): Promise<LoadResult> {
  // its stdout (where WASMQ_BENCH_GEN_ARGS=--trace-gc prints) to our stderr, never into the report
  const gen = fork(LOADGEN, [], { stdio: ["ignore", process.env.WASMQ_BENCH_GEN_ARGS ? 2 : "ignore", "inherit", "ipc"], execArgv: generatorNodeArgs() });
  return new Promise((resolve, reject) => {
    gen.on("message", (m: FromLoad) => {
      if (m.type === "measure-start") gen.send({ type: "go" });
      else if (m.type === "result") resolve(m.result);
      else if (m.type === "error") reject(new Error(m.message));
    });
    gen.once("exit", (code) => reject(new Error(`load generator exited with ${code}`)));
    gen.send({ type: "run", spec });
  }).finally(() => gen.kill()) as Promise<LoadResult>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { reps: { type: "string" }, duration: { type: "string" }, warmup: { type: "string" }, out: { type: "string" } } });
  const reps = Number(values.reps ?? 3);
  const durationSec = Number(values.duration ?? 2);
  const warmupSec = Number(values.warmup ?? 0.5);
  const dir = mkdtempSync(join(tmpdir(), "wasmq-bench-cluster-"));
  const redisPort = await freePort();
  const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const children: ChildProcess[] = [redis];
  try {
    await new Promise((r) => setTimeout(r, 300));
    const cluster = (id: string) => ({ cluster: { redis: `redis://127.0.0.1:${redisPort}`, id } });
    const standalone = await startBroker(dir, "standalone", { persistence: "lmdb" });
    const a = await startBroker(dir, "a", cluster("a"));
    const b = await startBroker(dir, "b", cluster("b"));
    children.push(standalone.child, a.child, b.child);
    const setups = [
      { name: "standalone", pub: standalone, sub: standalone, pids: [standalone.child.pid!] },
      { name: "cluster-same", pub: a, sub: a, pids: [a.child.pid!, b.child.pid!, redis.pid!] },
      { name: "cluster-cross", pub: a, sub: b, pids: [a.child.pid!, b.child.pid!, redis.pid!] },
    ];
    const machine = machineInfo();
    process.stderr.write(`${describeMachine(machine)}\n`);
    const rows: { setup: string; qos: number; rep: number; result: LoadResult; cpuPer1k: number }[] = [];
    for (let rep = 0; rep < reps; rep++) {
      for (const qos of [0, 1] as const) {
        for (const s of setups) {
          const spec: LoadSpec = {
            port: s.pub.port,
            subscriberPort: s.sub.port,
            scenarioId: `p2p-qos${qos}-64B`,
            publishers: 1,
            subscribers: 1,
            qos,
            payloadBytes: 64,
            persistentSubscribers: false,
            credentials: null,
            rate: null,
            window: 256,
            publisherWindow: 256,
            warmupSec,
            durationSec,
            count: null,
          };
          const before = s.pids.reduce((t, pid) => t + cpuSec(pid), 0);
          const result = await runLoad(spec);
          const after = s.pids.reduce((t, pid) => t + cpuSec(pid), 0);
          // CPU over warm-up + window + drain, divided by the deliveries of the window: comparable across setups, not absolute.
          const cpuPer1k = ((after - before) / Math.max(1, result.deliveries)) * 1000;
          rows.push({ setup: s.name, qos, rep, result, cpuPer1k });
          process.stderr.write(`rep ${rep + 1}/${reps} qos${qos} ${s.name}: ${Math.round(result.msgsPerSec)} msg/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, lost QoS 1 ${result.lostQos1}\n`);
        }
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const lines = [`wasmq cluster bench — ${describeMachine(machine)}`, `p2p, 64 B, 1 publisher → 1 subscriber, closed loop; median of ${reps} runs of ${durationSec} s`, ""];
    lines.push("| scenario | setup | msg/s | vs standalone | p50 ms | p99 ms | broker+redis CPU s per 1k msgs | lost QoS 1 |", "|---|---|---|---|---|---|---|---|");
    for (const qos of [0, 1]) {
      const base = median(rows.filter((r) => r.qos === qos && r.setup === "standalone").map((r) => r.result.msgsPerSec));
      for (const s of setups) {
        const rs = rows.filter((r) => r.qos === qos && r.setup === s.name);
        const rate = median(rs.map((r) => r.result.msgsPerSec));
        lines.push(
          `| p2p-qos${qos}-64B | ${s.name} | ${Math.round(rate)} | ${(rate / base).toFixed(2)}× | ${median(rs.map((r) => r.result.p50Ms)).toFixed(2)} | ${median(rs.map((r) => r.result.p99Ms)).toFixed(2)} | ${median(rs.map((r) => r.cpuPer1k)).toFixed(3)} | ${rs.reduce((t, r) => t + r.result.lostQos1, 0)} |`,
        );
      }
    }
    process.stdout.write(`${lines.join("\n")}\n`);
    if (values.out) writeFileSync(values.out, JSON.stringify({ machine, rows }, null, 2));
    if (rows.some((r) => r.result.lostQos1 > 0)) process.exitCode = 1;
  } finally {
    for (const c of children.reverse()) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill("SIGTERM");
        await Promise.race([once(c, "exit"), new Promise((r) => setTimeout(r, 5000))]);
        if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:cluster: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
