/**
 * One measured run: start a fresh broker in the target's process, fork a load
 * generator against it, snapshot the broker's CPU at the start and end of the
 * measurement window, close the broker. Each target keeps one process for the
 * whole invocation (loading the plugin host takes seconds on a busy machine);
 * each run gets a new broker, new plugin instances, a new data directory and a
 * garbage-collected heap.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BENCH_USER, chainNeedsCredentials, chainOfLength, standardChain, type ChainEntry } from "./plugins.js";
import type { FromLoad, FromTarget, LoadResult, LoadSpec, ProcessStats, TailFigures, TargetOptions, ToLoad, ToTarget } from "./protocol.js";
import type { Scenario, TargetName } from "./scenarios.js";
import { isBaseTarget, wireTarget, type Baseline } from "./baseline.js";
import { envNodeFlags } from "./env-flags.js";
import { BROKER_NODE_FLAGS } from "../broker/runtime-flags.js";
import { generatorNodeArgs } from "./generator-flags.js";

const TARGET_JS = fileURLToPath(new URL("./target.js", import.meta.url));
const LOADGEN_JS = fileURLToPath(new URL("./loadgen.js", import.meta.url));

export interface RunSettings {
  warmupSec: number;
  durationSec: number;
  count: number | null;
  /** Persistence of scenarios that do not fix their own. */
  persistence: "memory" | "lmdb";
  /** The window was fixed on the command line (--duration, --count, --quick): a scenario's minDurationSec does not lengthen it. */
  fixedDuration?: boolean;
}

export interface RunRecord {
  scenario: string;
  target: TargetName;
  rep: number;
  version: string;
  plugins: string[];
  persistence: "memory" | "lmdb";
  load: LoadResult;
  /** Broker CPU seconds over the measurement window. */
  cpuSec: number;
  rssMB: number;
  /** The broker's event loop and GC over the window (Node targets). */
  brokerTail?: TailFigures;
}

const WASMQ_TARGETS: readonly TargetName[] = ["native", "wasm", "wasm-nofuel", "wasm-no-v5", "wasm-base", "native-base"];

export function chainFor(s: Scenario, target: TargetName): ChainEntry[] {
  if (!WASMQ_TARGETS.includes(target)) return [];
  return s.chain.kind === "standard" ? standardChain() : chainOfLength(s.chain.length);
}

/** A child process speaking the bench's IPC messages, with its stderr kept for error reports. */
export class Child<In, Out extends { type: string }> {
  readonly proc: ChildProcess;
  private stderr = "";
  private waiters: { type: string; resolve: (m: Out) => void; reject: (e: Error) => void }[] = [];
  private exited: Promise<void>;
  private stopping = false;
  /** Rejects when the process exits before stop() was called. */
  readonly died: Promise<never>;
  onMessage: (m: Out) => void = () => {};

  constructor(
    private readonly label: string,
    script: string,
    execArgv: string[] = [],
  ) {
    // WASMQ_BENCH_NODE_ARGS or WASMQ_BENCH_GEN_ARGS (--trace-gc prints to stdout): every child's stdout goes to the bench's stderr
    this.proc = fork(script, [], { stdio: ["ignore", process.env.WASMQ_BENCH_NODE_ARGS || process.env.WASMQ_BENCH_GEN_ARGS ? "pipe" : "ignore", "pipe", "ipc"], execArgv });
    this.proc.stdout?.on("data", (d: Buffer) => process.stderr.write(d));
    this.proc.stderr!.on("data", (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
      // WASMQ_BENCH_LOG=debug shows the brokers' logs while the bench runs.
      if (process.env.WASMQ_BENCH_LOG) process.stderr.write(d);
    });
    this.proc.on("message", (m: Out) => {
      if (m.type === "error") {
        this.failAll(new Error(`${label}: ${(m as unknown as { message: string }).message}`));
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
      this.onMessage(m);
    });
    let died: (err: Error) => void = () => {};
    this.died = new Promise<never>((_, reject) => (died = reject));
    this.died.catch(() => {});
    this.exited = new Promise((resolve) => {
      this.proc.once("exit", (code, signal) => {
        const err = new Error(`${label} exited (${signal ?? `code ${code}`})${this.stderr ? `: ${this.stderr.trim()}` : ""}`);
        this.failAll(err);
        if (!this.stopping) died(err);
        resolve();
      });
    });
  }

  private failAll(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  send(msg: In): void {
    if (this.proc.connected) this.proc.send(msg as object);
  }

  /** Wait for the next message of a type. */
  expect<T extends Out["type"]>(type: T, timeoutMs: number): Promise<Extract<Out, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`${this.label}: no "${type}" within ${timeoutMs / 1000} s${this.stderr ? `: ${this.stderr.trim()}` : ""}`));
      }, timeoutMs);
      const done = (m: Out) => {
        clearTimeout(timer);
        resolve(m as Extract<Out, { type: T }>);
      };
      this.waiters.push({
        type,
        resolve: done,
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null && !this.stopping;
  }

  /** Wait for exit; kill after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * Extra Node flags for every target process alike (never the generator):
 * WASMQ_BENCH_PROF=dir writes a V8 CPU profile per target process into dir
 * (at its exit, named by Node: CPU.<date>.<pid>...cpuprofile);
 * WASMQ_BENCH_NODE_ARGS="--trace-gc ..." adds any flags, and the targets'
 * stdout (where --trace-gc prints) then goes to the bench's stderr.
 */
export function targetNodeArgs(): string[] {
  const args: string[] = [];
  if (process.env.WASMQ_BENCH_PROF) args.push("--cpu-prof", `--cpu-prof-dir=${process.env.WASMQ_BENCH_PROF}`);
  args.push(...envNodeFlags("WASMQ_BENCH_NODE_ARGS"));
  return args;
}

/** One long-lived process per target, started on first use. */
export class TargetPool {
  private readonly procs = new Map<TargetName, Child<ToTarget, FromTarget>>();

  /** baseline: where wasm-base / native-base run from (--baseline). */
  constructor(private readonly baseline: Baseline | null = null) {}

  get(target: TargetName): Child<ToTarget, FromTarget> {
    let proc = this.procs.get(target);
    if (!proc || !proc.alive) {
      let script = TARGET_JS;
      if (isBaseTarget(target)) {
        if (!this.baseline) throw new Error(`target ${target} needs --baseline DIR`);
        script = this.baseline.targetScript;
      }
      // WASMQ_BENCH_TARGET_ARGS (main) and WASMQ_BENCH_PROF / WASMQ_BENCH_NODE_ARGS (targetNodeArgs): extra Node flags for the broker processes
      const extra = envNodeFlags("WASMQ_BENCH_TARGET_ARGS");
      // Every Node broker, bare aedes included, runs with the flags wasmq ships (broker/runtime-flags.ts): the same V8 heap settings for all.
      proc = new Child<ToTarget, FromTarget>(`target ${target}`, script, ["--expose-gc", ...BROKER_NODE_FLAGS, ...extra, ...targetNodeArgs()]);
      this.procs.set(target, proc);
    }
    return proc;
  }

  /** Start the processes of these targets and load their code, all at once. */
  async preload(targets: TargetName[]): Promise<void> {
    await Promise.all(
      targets.map(async (target) => {
        const proc = this.get(target);
        const done = proc.expect("preloaded", 120_000);
        proc.send({ type: "preload", target: wireTarget(target) });
        await Promise.race([done, proc.died]);
      }),
    );
  }

  /** Kill a target process whose broker could not be closed cleanly; the next run starts a new one. */
  async discard(target: TargetName): Promise<void> {
    const proc = this.procs.get(target);
    this.procs.delete(target);
    if (!proc) return;
    proc.proc.kill("SIGKILL");
    await proc.stop(1000);
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.procs.values()].map(async (p) => {
        p.send({ type: "stop" });
        await p.stop(10_000);
      }),
    );
    this.procs.clear();
  }
}

/** The measurement window of a run: the scenario's minimum unless the command line fixed it. */
export function windowOf(s: Scenario, settings: RunSettings): number {
  return s.minDurationSec && !settings.fixedDuration ? Math.max(settings.durationSec, s.minDurationSec) : settings.durationSec;
}

/**
 * The broker side of one run, shared by the throughput runs (runOne) and the
 * idle-connection runs (idle-run.ts): a fresh data directory, the scenario's
 * chain for the target, a broker started in the target's process, and at the
 * end the broker closed (or its process discarded when it cannot be) and the
 * directory removed.
 */
export class BrokerRun {
  readonly persistence: "memory" | "lmdb";
  readonly chain: ChainEntry[];
  readonly broker: Child<ToTarget, FromTarget>;
  private readonly dataDir: string;
  private started = false;

  constructor(
    private readonly pool: TargetPool,
    s: Scenario,
    private readonly target: TargetName,
    persistenceDefault: "memory" | "lmdb",
    tmpPrefix: string,
  ) {
    this.persistence = s.persistence ?? persistenceDefault;
    this.chain = chainFor(s, target);
    this.dataDir = mkdtempSync(join(tmpdir(), tmpPrefix));
    this.broker = pool.get(target);
  }

  /** Start the broker; resolves with its port and version, rejects if the target process dies. */
  async start(): Promise<{ port: number; version: string }> {
    const options: TargetOptions = { target: wireTarget(this.target), persistence: this.persistence, dataDir: this.dataDir, chain: this.chain };
    const readyP = this.broker.expect("ready", 60_000);
    this.broker.send({ type: "start", options });
    const ready = await Promise.race([readyP, this.broker.died]);
    this.started = true;
    return ready;
  }

  /** A reading from the running broker. */
  async ask<T extends "stats" | "memory">(type: T, timeoutMs: number): Promise<Extract<FromTarget, { type: T }>> {
    const p = this.broker.expect(type, timeoutMs);
    this.broker.send({ type } as ToTarget);
    return Promise.race([p, this.broker.died]);
  }

  /** Close the broker (a process that cannot close it is discarded: the next run starts a new one) and remove the data directory. */
  async end(closeTimeoutMs: number): Promise<void> {
    try {
      if (this.started || this.broker.alive) {
        const closed = this.broker.expect("closed", closeTimeoutMs);
        this.broker.send({ type: "close" });
        await Promise.race([closed, this.broker.died]).catch(() => this.pool.discard(this.target));
      }
    } finally {
      rmSync(this.dataDir, { recursive: true, force: true });
    }
  }
}

export async function runOne(pool: TargetPool, s: Scenario, target: TargetName, rep: number, settings: RunSettings): Promise<RunRecord> {
  const run = new BrokerRun(pool, s, target, settings.persistence, "wasmq-bench-");
  const { persistence, chain } = run;
  let load: Child<ToLoad, FromLoad> | null = null;
  try {
    const ready = await run.start();
    const stats = async (): Promise<ProcessStats> => (await run.ask("stats", 10_000)).stats;

    const spec: LoadSpec = {
      port: ready.port,
      scenarioId: s.id,
      publishers: s.publishers,
      subscribers: s.subscribers,
      qos: s.qos,
      payloadBytes: s.payloadBytes,
      persistentSubscribers: s.persistentSubscribers,
      credentials: chainNeedsCredentials(chain) ? BENCH_USER : null,
      rate: s.rate,
      // Enough outstanding deliveries to keep every target busy (measured: larger
      // windows add queueing latency, not throughput).
      window: s.subscribers > 1 ? 500 : 256,
      publisherWindow: s.rate === null ? 256 : 10_000,
      warmupSec: settings.warmupSec,
      durationSec: windowOf(s, settings),
      count: settings.count,
      // aedes 1.2 refuses MQTT 5 (CONNACK "unsupported protocol version"): its v5 rows are its 3.1.1 run, labelled in the report
      protocol: target === "aedes" ? 4 : (s.protocol ?? 4),
      topicAliases: target !== "aedes" && (s.topicAliases ?? false),
    };
    const gen = new Child<ToLoad, FromLoad>(`load generator (${s.id} → ${target})`, LOADGEN_JS, generatorNodeArgs());
    load = gen;
    let before: Promise<ProcessStats> | null = null;
    let after: Promise<ProcessStats> | null = null;
    gen.onMessage = (m) => {
      if (m.type === "measure-start") {
        before = stats();
        before.then(
          () => gen.send({ type: "go" }),
          () => {},
        );
      } else if (m.type === "measure-end") {
        after = stats();
        after.catch(() => {});
      }
    };
    const resultP = gen.expect("result", 60_000 + (settings.warmupSec + spec.durationSec) * 1000 + (settings.count ?? 0) * 10);
    gen.send({ type: "run", spec });
    // A broker that crashes mid-run is the error to report, not the clients' resets that follow.
    const { result } = await Promise.race([resultP, run.broker.died]);
    if (!before || !after) throw new Error("the load generator finished without a measurement window");
    const [s0, s1] = await Promise.all([before as Promise<ProcessStats>, after as Promise<ProcessStats>]);
    return {
      scenario: s.id,
      target,
      rep,
      version: ready.version,
      plugins: chain.map((e) => e.name),
      persistence,
      load: result,
      cpuSec: s1.cpuSec - s0.cpuSec,
      rssMB: s1.rssMB,
      ...(s1.tail ? { brokerTail: s1.tail } : {}),
    };
  } finally {
    if (load) await load.stop(3000);
    await run.end(20_000);
  }
}
