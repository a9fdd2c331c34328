/** Messages between the bench orchestrator (run.ts) and its child processes (over the fork IPC channel). */
import type { ChainEntry } from "./plugins.js";
import type { TargetName } from "./scenarios.js";

/** What a target process is asked to run: never a --baseline name (bench/baseline.ts addresses those by their counterpart). */
export type WireTarget = Exclude<TargetName, "wasm-base" | "native-base">;

export interface TargetOptions {
  target: WireTarget;
  persistence: "memory" | "lmdb";
  /** LMDB directory (removed by the orchestrator afterwards). */
  dataDir: string;
  /** Plugins of a wasmq target (native, wasm, wasm-nofuel), in order. */
  chain: ChainEntry[];
}

export interface ProcessStats {
  /** User + system CPU seconds of the broker's process since it started. */
  cpuSec: number;
  /** Peak resident set size in MB while the current broker has been running. */
  rssMB: number;
  /** Node targets: the event loop and GC since the previous stats reading (bench/tail.ts). */
  tail?: TailFigures;
}

/** What delays a process's event loop over an interval: its loop delay histogram and its GC pauses. */
export interface TailFigures {
  /** monitorEventLoopDelay (1 ms resolution): how late the loop ran a timer, ms. */
  loopP50Ms: number;
  loopP99Ms: number;
  loopMaxMs: number;
  /** GC pauses (PerformanceObserver "gc"): count, longest and total, ms; scavenges (young generation) separately. */
  gcCount: number;
  gcMaxMs: number;
  gcTotalMs: number;
  scavenges: number;
  scavengeMaxMs: number;
  /** Full (mark-compact) collections among them; absent from a --baseline build older than the field. */
  fullGcs?: number;
}

/** The broker process's memory now, after a full garbage collection (Node targets): the idle-connection scenarios. */
export interface MemoryStats {
  /** Resident set size (VmRSS), MB. */
  rssMB: number;
  /** V8 heap in use and memory held outside it (Buffers, ArrayBuffers), MB; null for Mosquitto. */
  heapUsedMB: number | null;
  externalMB: number | null;
}

/** [preload → preloaded,] start → ready, stats → stats and memory → memory (any number), close → closed; then start again, or stop (exit). */
export type ToTarget =
  | { type: "preload"; target: WireTarget }
  | { type: "start"; options: TargetOptions }
  | { type: "stats" }
  | { type: "memory" }
  | { type: "close" }
  | { type: "stop" };
export type FromTarget =
  | { type: "preloaded" }
  | { type: "ready"; port: number; version: string }
  | { type: "stats"; stats: ProcessStats }
  | { type: "memory"; memory: MemoryStats }
  | { type: "closed" }
  | { type: "error"; message: string };

export interface LoadSpec {
  port: number;
  /** Subscribers connect here instead of `port` (the cluster bench: another node). */
  subscriberPort?: number;
  scenarioId: string;
  publishers: number;
  subscribers: number;
  qos: 0 | 1;
  payloadBytes: number;
  persistentSubscribers: boolean;
  credentials: { username: string; password: string } | null;
  /** Offered rate in published messages/s, or null for closed-loop max throughput. */
  rate: number | null;
  /** Closed loop: most deliveries outstanding (sent, not yet received) at once. */
  window: number;
  /** QoS 1: most unacknowledged PUBLISHes per publisher. */
  publisherWindow: number;
  warmupSec: number;
  /** Measure for this long, or (when count is set) until `count` measured messages were delivered. */
  durationSec: number;
  count: number | null;
  /** MQTT protocol level of every client (4 = 3.1.1, the default; 5 = MQTT 5). */
  protocol?: 4 | 5;
  /** MQTT 5: publishers use a topic alias, subscribers accept the broker's (Topic Alias Maximum 10). */
  topicAliases?: boolean;
}

export interface LoadResult {
  /** Deliveries per second in the measurement window. */
  msgsPerSec: number;
  /** Published messages per second in the measurement window. */
  publishedPerSec: number;
  deliveries: number;
  windowSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  latencySamples: number;
  /** The window's latencies (bench/latency-histogram.ts), for the p99 of all windows pooled; fixed-rate runs only. */
  latencyHistogram?: [number, number][];
  /** QoS 1 messages the broker acknowledged (PUBACK) that some subscriber never received. */
  lostQos1: number;
  /** QoS 0 messages sent that some subscriber never received (QoS 0 permits it; reported, not an error). */
  lostQos0: number;
  duplicates: number;
  /** The generator's own CPU seconds over the window, and its share of one core. */
  genCpuSec: number;
  genCpuShare: number;
  /** Fixed-rate runs: the generator could not send on schedule (broker backpressure). */
  behindSchedule: boolean;
  /** QoS 1: the per-publisher window used (the spec's, capped by an MQTT 5 broker's Receive Maximum). */
  publisherWindow?: number;
  /** MQTT 5: deliveries the broker sent with a topic alias in place of the topic. */
  aliasedDeliveries?: number;
  /** The generator's own event loop and GC over the window: is the generator the tail? */
  genTail: TailFigures;
  /** Socket reads by all the generator's clients over the window (per delivery: how many packets the broker's writes carry each). */
  genReads?: number;
  /** Of genCpuSec, the generator's own code (user time); the rest is the kernel's socket work (system time). */
  genUserSec?: number;
}

export type ToLoad = { type: "run"; spec: LoadSpec } | { type: "go" };
export type FromLoad =
  | { type: "connected" }
  | { type: "measure-start" }
  | { type: "measure-end" }
  | { type: "result"; result: LoadResult }
  | { type: "error"; message: string };
