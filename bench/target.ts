/**
 * The broker under test, in its own process (forked by run.ts, one per target,
 * reused across that target's runs). Per run it starts a fresh broker — new
 * aedes instance, new plugin instances, new data directory — reports its port,
 * answers CPU/RSS queries, then closes it and collects garbage before the next
 * run. Between runs the process is idle, so its CPU time over a measurement
 * window is the broker's.
 *
 *   aedes        bare aedes 1.2: same persistence, same aedes options and TCP_NODELAY as wasmq, no hooks
 *   native       wasmq (startBroker) with the native TypeScript twins
 *   wasm         wasmq with the Wasm plugins, fuel metered
 *   wasm-nofuel  wasmq with the Wasm plugins, no fuel metering
 *   wasm-no-v5   wasmq with the Wasm plugins, without the MQTT 5 protocol layer (measurement build)
 *   mosquitto    a fresh /usr/sbin/mosquitto per run, generated config (stats from /proc)
 *   echo         a trivial Node relay (bench/echo-broker.ts): the generator's and the machine's latency floor
 */
import { createServer, type Server } from "node:net";
import { aedesVersion } from "./machine.js";
import { BENCH_FUEL, nativePath, wasmPath } from "./plugins.js";
import { nodeMemory, procMemory } from "./memory.js";
import type { FromTarget, MemoryStats, ProcessStats, TargetOptions, ToTarget } from "./protocol.js";
import { TailMonitor } from "./tail.js";
import { startHeapSampling, stopHeapSampling } from "./heap-sampler.js";

interface Started {
  port: number;
  version: string;
  stats(): ProcessStats;
  /** Memory now, after a full GC (the idle-connection scenarios). */
  memory(): MemoryStats | Promise<MemoryStats>;
  stop(): Promise<void>;
}

const AEDES_VERSION = aedesVersion();

/**
 * This process's CPU time, and its peak RSS since the current broker started
 * (sampled: the process's own maxRSS would carry the peak of earlier runs).
 */
class OwnStats {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;
  /** Loop delay and GC pauses between two readings (the orchestrator reads at the start and end of the window). */
  private readonly tail = new TailMonitor();

  constructor() {
    this.sample();
    this.timer = setInterval(() => this.sample(), 25);
    this.timer.unref();
  }

  private sample(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.peak) this.peak = rss;
  }

  read(): ProcessStats {
    this.sample();
    const cpu = process.cpuUsage();
    return { cpuSec: (cpu.user + cpu.system) / 1e6, rssMB: this.peak / 2 ** 20, tail: this.tail.read() };
  }

  dispose(): void {
    clearInterval(this.timer);
    this.tail.dispose();
  }
}

/** The aedes options wasmq's startBroker uses with its default limits. */
const AEDES_OPTIONS = { queueLimit: 1000, maxClientsIdLength: 256, maxTopicLevels: 100, connectTimeout: 30_000 };

// Each target imports only what it runs: the plugin host pulls in binaryen
// (seconds to load on a busy machine), which bare aedes and Mosquitto never need.

async function startBareAedes(opts: TargetOptions): Promise<Started> {
  const { Aedes } = await import("aedes");
  // The persistence modules wasmq's openPersistence picks from, imported directly
  // (its index also loads the plugin host).
  let persistence: unknown;
  let closePersistence: () => Promise<void>;
  if (opts.persistence === "memory") {
    const { createMemoryPersistence } = await import("../broker/persistence/memory.js");
    persistence = createMemoryPersistence();
    closePersistence = async () => {};
  } else {
    const { openForBroker } = await import("../broker/persistence/lmdb.js");
    const opened = await openForBroker({ path: opts.dataDir, durability: "sync" });
    persistence = opened.persistence;
    closePersistence = opened.close;
  }
  const aedes = new Aedes({ ...AEDES_OPTIONS, persistence: persistence as never });
  await aedes.listen();
  const server: Server = createServer((socket) => {
    socket.setNoDelay(true);
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const stats = new OwnStats();
  return {
    port: (server.address() as { port: number }).port,
    version: `aedes ${AEDES_VERSION}`,
    stats: () => stats.read(),
    memory: () => nodeMemory(opts.target),
    async stop() {
      stats.dispose();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await closePersistence();
    },
  };
}

async function startWasmq(opts: TargetOptions): Promise<Started> {
  const { pino } = await import("pino");
  const { parseRawConfig, resolveConfig } = await import("../broker/config.js");
  const { startBroker } = await import("../broker/server.js");
  const wasm = opts.target !== "native";
  const raw = parseRawConfig(
    {
      host: "127.0.0.1",
      port: 0,
      ws: false,
      data: opts.dataDir,
      persistence: opts.persistence,
      // WASMQ_BENCH_WRITE_HOLD_MS=N sets wasmq's writeHoldMs (for a record of its effect; no other target has the knob)
      ...(process.env.WASMQ_BENCH_WRITE_HOLD_MS !== undefined ? { writeHoldMs: Number(process.env.WASMQ_BENCH_WRITE_HOLD_MS) } : {}),
      // WASMQ_BENCH_WRITE_HOLD=adaptive|fixed sets wasmq's writeHold likewise
      ...(process.env.WASMQ_BENCH_WRITE_HOLD !== undefined ? { writeHold: process.env.WASMQ_BENCH_WRITE_HOLD } : {}),
      allowAnonymous: !opts.chain.some((e) => e.plugin === "auth"),
      log: { level: "silent" },
      // The idle-connection scenarios hold 19,300 clients; the default cap (10,000) would refuse the rest. aedes and Mosquitto have none.
      limits: { maxConnections: 20_000 },
      metrics: false,
      sys: false,
      plugins: opts.chain.map((e) => ({
        name: e.name,
        ...(wasm ? { wasm: wasmPath(e.plugin) } : { native: nativePath(e.plugin) }),
        config: e.config,
        limits: { fuel: BENCH_FUEL },
        watch: false,
      })),
    },
    "bench target config",
  );
  const config = resolveConfig(raw, null);
  // WASMQ_BENCH_LOG=debug shows the broker's log while the bench runs.
  const logger = pino({ level: process.env.WASMQ_BENCH_LOG ?? "silent" }, process.stderr);
  const broker = await startBroker(config, { logger, meterFuel: opts.target !== "wasm-nofuel", ...(opts.target === "wasm-no-v5" ? { withoutMqtt5: true } : {}) });
  const stats = new OwnStats();
  return {
    port: broker.port("tcp"),
    version: `wasmq on aedes ${AEDES_VERSION}, ${opts.chain.length} plugin(s)`,
    stats: () => stats.read(),
    memory: () => nodeMemory(opts.target),
    async stop() {
      stats.dispose();
      // WASMQ_BENCH_HOLD_FIGURES=1: what the write hold did in this run (held / dropped unwritten / written / written first), to stderr
      if (process.env.WASMQ_BENCH_HOLD_FIGURES) {
        const store = broker.persistence.persistence as { asyncPersistence?: { holdFigures?(): object } };
        const f = store.asyncPersistence?.holdFigures?.();
        if (f) process.stderr.write(`hold figures ${opts.target}: ${JSON.stringify(f)}\n`);
      }
      await broker.close();
    },
  };
}

async function startEcho(): Promise<Started> {
  const { startEchoBroker } = await import("./echo-broker.js");
  const echo = await startEchoBroker();
  const stats = new OwnStats();
  return {
    port: echo.port,
    version: "echo relay (bench/echo-broker.ts)",
    stats: () => stats.read(),
    memory: () => nodeMemory("echo"),
    async stop() {
      stats.dispose();
      await echo.close();
    },
  };
}

async function startMosquittoTarget(opts: TargetOptions): Promise<Started> {
  const { startMosquitto } = await import("./mosquitto.js");
  const m = await startMosquitto(opts.dataDir);
  return { port: m.port, version: `mosquitto ${m.version}`, stats: m.stats, memory: () => procMemory(m.pid), stop: m.stop };
}

/** Import what a target needs ahead of its first run (the orchestrator preloads every target in parallel). */
async function preload(target: TargetOptions["target"]): Promise<void> {
  if (target === "aedes") await Promise.all([import("aedes"), import("../broker/persistence/memory.js")]);
  else if (target === "mosquitto") await import("./mosquitto.js");
  else if (target === "echo") await import("./echo-broker.js");
  else await Promise.all([import("pino"), import("../broker/config.js"), import("../broker/server.js")]);
}

function start(opts: TargetOptions): Promise<Started> {
  switch (opts.target) {
    case "aedes":
      return startBareAedes(opts);
    case "native":
    case "wasm":
    case "wasm-nofuel":
    case "wasm-no-v5":
      return startWasmq(opts);
    case "mosquitto":
      return startMosquittoTarget(opts);
    case "echo":
      return startEcho();
  }
}

function send(msg: FromTarget): void {
  if (process.connected) process.send!(msg);
}

if (!process.send) {
  console.error("bench/target.js is started by bench/run.js (it talks over the fork IPC channel)");
  process.exit(2);
}

let running: Started | null = null;
let runningTarget = "";

async function closeRunning(): Promise<void> {
  const r = running;
  running = null;
  await r?.stop();
  if (r) await stopHeapSampling(runningTarget);
  // Start the next run from a clean heap (the orchestrator starts this process with --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
}

async function stopAndExit(): Promise<never> {
  await closeRunning().catch(() => {});
  // Lingering handles (LMDB threads, aedes timers) must not keep a finished target alive.
  process.exit(0);
}

// The orchestrator went away (finished, crashed or interrupted): do not outlive it.
process.on("disconnect", () => void stopAndExit());
process.on("message", (msg: ToTarget) => {
  void (async () => {
    try {
      if (msg.type === "preload") {
        await preload(msg.target);
        send({ type: "preloaded" });
      } else if (msg.type === "start") {
        if (running) throw new Error("a broker is already running in this target process");
        await startHeapSampling();
        runningTarget = msg.options.target;
        running = await start(msg.options);
        send({ type: "ready", port: running.port, version: running.version });
      } else if (msg.type === "stats") {
        if (!running) throw new Error("stats requested with no broker running");
        send({ type: "stats", stats: running.stats() });
      } else if (msg.type === "memory") {
        if (!running) throw new Error("memory requested with no broker running");
        send({ type: "memory", memory: await running.memory() });
      } else if (msg.type === "close") {
        await closeRunning();
        send({ type: "closed" });
      } else if (msg.type === "stop") {
        await stopAndExit();
      }
    } catch (err) {
      send({ type: "error", message: err instanceof Error ? err.message : String(err) });
    }
  })();
});
