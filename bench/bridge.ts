/**
 * `npm run bench:bridge`: the edge bridge against Mosquitto's bridge, in the
 * same run, to the same upstream (a Mosquitto on loopback).
 *
 *   throughput  a publisher streams --count QoS 1 messages into the edge; the
 *               rate is messages / (first publish → last arrival upstream).
 *   backlog     the upstream is frozen (SIGSTOP) while --backlog QoS 1
 *               messages are published at the edge, then resumed; the drain
 *               rate is messages / (first → last arrival upstream), so the
 *               bridges' different reconnect delays do not count.
 *
 * Each edge runs as its own process (wasmq: the CLI with LMDB, durability
 * "sync"; Mosquitto: in-memory queue, which a restart loses — the
 * comparison is of speed, not of the same guarantee). The publisher and the
 * upstream subscriber run in this process.
 *
 *   node dist/bench/bridge.js [--count 20000] [--backlog 100000] [--window 1000] [--skip-mosquitto]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import mqtt, { type MqttClient } from "mqtt";
import { MOSQUITTO_BIN, mosquittoInstalled, mosquittoVersion } from "./mosquitto.js";
import { accepts, freePort } from "./ports.js";
import { BROKER_NODE_FLAGS } from "../broker/runtime-flags.js";

const CLI = fileURLToPath(new URL("../broker/cli.js", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitListening(port: number, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited`);
    if (await accepts(port)) return;
    await sleep(20);
  }
  throw new Error(`${what} did not listen on ${port}`);
}

const children = new Set<ChildProcess>();
function start(cmd: string, args: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", process.env.WASMQ_BENCH_LOG ? "inherit" : "ignore"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGCONT");
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
}
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

async function startUpstream(dir: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const conf = join(dir, `upstream-${port}.conf`);
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, "allow_anonymous true", "max_queued_messages 0", "max_queued_bytes 0", ""].join("\n"));
  const child = start(MOSQUITTO_BIN, ["-c", conf]);
  await waitListening(port, child, "upstream mosquitto");
  return { child, port };
}

interface Edge {
  name: string;
  port: number;
  child: ChildProcess;
}

async function startWasmqEdge(dir: string, upstreamPort: number): Promise<Edge> {
  const port = await freePort();
  const config = join(dir, `wasmq-edge-${port}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      host: "127.0.0.1",
      port,
      ws: false,
      sys: false,
      data: join(dir, `wasmq-edge-${port}-data`),
      log: { level: "warn" },
      bridges: [{ name: "cloud", url: `mqtt://127.0.0.1:${upstreamPort}`, clientId: `wasmq-edge-${port}`, reconnectMinMs: 200, reconnectMaxMs: 1000, out: [{ topic: "sensors/#", qos: 1, remotePrefix: "site1/" }] }],
    }),
  );
  const child = start(process.execPath, [...BROKER_NODE_FLAGS, CLI, "--config", config]);
  await waitListening(port, child, "wasmq edge");
  return { name: "wasmq", port, child };
}

async function startMosquittoEdge(dir: string, upstreamPort: number): Promise<Edge> {
  const port = await freePort();
  const conf = join(dir, `mosquitto-edge-${port}.conf`);
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "max_queued_messages 0",
      "max_queued_bytes 0",
      "connection cloud",
      `address 127.0.0.1:${upstreamPort}`,
      `clientid mosquitto-edge-${port}`,
      "cleansession false",
      "try_private true",
      "restart_timeout 1 2",
      'topic sensors/# out 1 "" site1/',
      "",
    ].join("\n"),
  );
  const child = start(MOSQUITTO_BIN, ["-c", conf]);
  await waitListening(port, child, "mosquitto edge");
  return { name: "mosquitto", port, child };
}

class Arrivals {
  readonly seen = new Set<string>();
  copies = 0;
  first = 0;
  last = 0;
  private target = Infinity;
  private done: (() => void) | null = null;
  constructor(readonly client: MqttClient) {
    client.on("message", (_t, payload) => {
      const now = performance.now();
      if (this.copies === 0) this.first = now;
      this.copies++;
      this.last = now;
      this.seen.add(payload.toString());
      if (this.seen.size >= this.target) this.done?.();
    });
  }
  reset(): void {
    this.seen.clear();
    this.copies = 0;
  }
  waitFor(n: number, timeoutMs: number): Promise<void> {
    this.target = n;
    if (this.seen.size >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.seen.size} of ${n} arrived`)), timeoutMs);
      this.done = () => (clearTimeout(timer), resolve());
    });
  }
}

async function connect(port: number, opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, keepalive: 0, ...opts });
  await new Promise<void>((resolve, reject) => (c.once("connect", () => resolve()), c.once("error", reject)));
  return c;
}

/** Publish n QoS 1 messages with at most `window` unacknowledged. */
async function publishMany(port: number, n: number, tag: string, window: number): Promise<void> {
  const c = await connect(port, { clientId: `bench-pub-${tag}` });
  let next = 0;
  await new Promise<void>((resolve, reject) => {
    let outstanding = 0;
    const pump = () => {
      while (outstanding < window && next < n) {
        const i = next++;
        outstanding++;
        c.publish(`sensors/d${i % 50}/temp`, `${tag}-${i}`, { qos: 1 }, (err) => {
          if (err) return reject(err);
          outstanding--;
          if (next === n && outstanding === 0) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  await c.endAsync();
}

interface Result {
  edge: string;
  throughput: number;
  throughputCopies: number;
  backlogDrain: number;
  backlogFromResumeSec: number;
  backlogCopies: number;
}

async function runEdge(kind: "wasmq" | "mosquitto", dir: string, count: number, backlog: number, window: number): Promise<Result> {
  const upstream = await startUpstream(dir);
  const sub = await connect(upstream.port, { clientId: `bench-sub-${kind}` });
  const arrivals = new Arrivals(sub);
  await sub.subscribeAsync("site1/#", { qos: 1 });
  const edge = kind === "wasmq" ? await startWasmqEdge(dir, upstream.port) : await startMosquittoEdge(dir, upstream.port);
  try {
    // Let the bridge connect: probe until a message crosses.
    for (let i = 0; arrivals.seen.size === 0; i++) {
      if (i > 200) throw new Error(`${kind} bridge never connected`);
      await publishMany(edge.port, 1, `probe${i}`, 1);
      await sleep(50);
    }
    arrivals.reset();
    const t0 = performance.now();
    await publishMany(edge.port, count, "t", window);
    await arrivals.waitFor(count, 300_000);
    const throughput = count / ((arrivals.last - t0) / 1000);
    const throughputCopies = arrivals.copies;

    arrivals.reset();
    upstream.child.kill("SIGSTOP");
    await publishMany(edge.port, backlog, "b", window);
    const resumed = performance.now();
    upstream.child.kill("SIGCONT");
    await arrivals.waitFor(backlog, 600_000);
    return {
      edge: kind,
      throughput,
      throughputCopies,
      backlogDrain: backlog / ((arrivals.last - arrivals.first) / 1000),
      backlogFromResumeSec: (arrivals.last - resumed) / 1000,
      backlogCopies: arrivals.copies,
    };
  } finally {
    await sub.endAsync(true).catch(() => {});
    await stop(edge.child);
    await stop(upstream.child);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: "string", default: "20000" },
      backlog: { type: "string", default: "100000" },
      window: { type: "string", default: "1000" },
      "skip-mosquitto": { type: "boolean", default: false },
    },
  });
  const count = Number(values.count);
  const backlog = Number(values.backlog);
  const window = Number(values.window);
  if (!mosquittoInstalled()) throw new Error(`the bridge bench needs Mosquitto as the upstream (${MOSQUITTO_BIN})`);
  const dir = mkdtempSync(join(tmpdir(), "wasmq-bench-bridge-"));
  const load = loadavg()[0]!.toFixed(2);
  process.stderr.write(`bridge bench: ${count} messages, backlog ${backlog}, window ${window}, mosquitto ${mosquittoVersion()}, load ${load}\n`);
  const results: Result[] = [];
  try {
    for (const kind of values["skip-mosquitto"] ? (["wasmq"] as const) : (["wasmq", "mosquitto"] as const)) {
      process.stderr.write(`  ${kind} edge...\n`);
      results.push(await runEdge(kind, dir, count, backlog, window));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = results.map((r) => [
    r.edge,
    `${Math.round(r.throughput)} msg/s`,
    String(r.throughputCopies - count),
    `${Math.round(r.backlogDrain)} msg/s`,
    `${r.backlogFromResumeSec.toFixed(1)} s`,
    String(r.backlogCopies - backlog),
  ]);
  const head = ["edge", "throughput", "dups", `drain ${backlog}`, "resume→last", "dups"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  console.log([line(head), ...rows.map(line)].join("\n"));
  if (results.length === 2) {
    console.log(`wasmq/mosquitto: throughput ${(results[0]!.throughput / results[1]!.throughput).toFixed(2)}, drain ${(results[0]!.backlogDrain / results[1]!.backlogDrain).toFixed(2)}`);
  }
  console.log(`load average (1 min) at start: ${load}, finished ${new Date().toISOString()}`);
}

main().catch((err: Error) => {
  process.stderr.write(`bench:bridge: ${err.message}\n`);
  process.exit(1);
});
