/** Bench targets and scenarios. Scenario ids are a contract (JSON output, README, CI). */

/** wasm-base / native-base: an older build's wasm and native targets (--baseline, bench/baseline.ts). */
export const TARGETS = ["aedes", "native", "wasm", "wasm-nofuel", "mosquitto", "wasm-base", "native-base", "wasm-no-v5", "echo"] as const;
export type TargetName = (typeof TARGETS)[number];

export function isTarget(s: string): s is TargetName {
  return (TARGETS as readonly string[]).includes(s);
}

/** Which plugins a wasmq target runs: the standard chain, or N per-message plugins. */
export type ChainSpec = { kind: "standard" } | { kind: "length"; length: number };

export interface Scenario {
  id: string;
  publishers: number;
  subscribers: number;
  qos: 0 | 1;
  payloadBytes: number;
  /** Subscribers keep a persistent session (clean=false): every QoS 1 delivery goes through the persistence. */
  persistentSubscribers: boolean;
  /** Fixed by the scenario; otherwise the run's --persistence. */
  persistence: "memory" | "lmdb" | null;
  chain: ChainSpec;
  /** Offered publish rate in messages/s; null = as fast as the broker delivers (closed loop). */
  rate: number | null;
  /** Targets this scenario compares. */
  targets: readonly TargetName[];
  /** Part of the --quick selection. */
  quick: boolean;
  /** One line on what it shows. */
  about: string;
  /** MQTT protocol level of the generator's clients (4 = 3.1.1, the default; 5 = MQTT 5). */
  protocol?: 4 | 5;
  /** MQTT 5: publishers send with a topic alias and subscribers accept aliases from the broker. */
  topicAliases?: boolean;
  /** Measurement window and repetitions this scenario needs to be stable, used unless --duration/--reps/--count/--quick say otherwise. */
  minDurationSec?: number;
  minReps?: number;
  /** Idle-connection scenario (bench/idle-run.ts): this many clients connect, subscribe and stay idle (--conns overrides); no traffic. */
  conns?: number;
}

/**
 * The targets of most scenarios. `wasm-no-v5` (wasmq with the standard Wasm
 * chain but without the MQTT 5 protocol layer, a measurement build only) runs
 * where the v5 layer's cost to 3.1.1 traffic is measured.
 */
const ALL = ["aedes", "native", "wasm", "wasm-nofuel", "mosquitto"] as const;
const PLUGIN_TARGETS = ["aedes", "native", "wasm", "wasm-nofuel"] as const;
const STANDARD: ChainSpec = { kind: "standard" };

const SIZES = [
  ["64B", 64],
  ["1KB", 1024],
  ["16KB", 16 * 1024],
] as const;

function p2p(qos: 0 | 1, label: string, bytes: number, quick: boolean): Scenario {
  return {
    id: `p2p-qos${qos}-${label}`,
    publishers: 1,
    subscribers: 1,
    qos,
    payloadBytes: bytes,
    persistentSubscribers: false,
    persistence: null,
    chain: STANDARD,
    rate: null,
    targets: ALL,
    quick,
    about: `1 publisher → 1 subscriber, QoS ${qos}, ${label} JSON, standard chain, max throughput`,
  };
}

function chain(length: number, quick: boolean): Scenario {
  return {
    id: `chain${length}-qos0-64B`,
    publishers: 1,
    subscribers: 1,
    qos: 0,
    payloadBytes: 64,
    persistentSubscribers: false,
    persistence: null,
    chain: { kind: "length", length },
    rate: null,
    // aedes is the zero-plugin reference in each chain scenario.
    targets: PLUGIN_TARGETS,
    quick,
    about: `p2p QoS 0 64B through ${length} per-message plugin${length === 1 ? "" : "s"}`,
  };
}

/** The broker's own 16 KB path: wasmq with no per-message plugin against bare aedes (what p2p-qos0-16KB's chain adds is the difference). */
function chain0Large(): Scenario {
  return { ...chain(0, false), id: "chain0-qos0-16KB", payloadBytes: 16 * 1024, about: "p2p QoS 0 16 KB through 0 per-message plugins: the broker's own 16 KB path" };
}

function persistenceScenario(mode: "memory" | "lmdb"): Scenario {
  return {
    id: `p2p-qos1-64B-${mode}`,
    publishers: 1,
    subscribers: 1,
    qos: 1,
    payloadBytes: 64,
    persistentSubscribers: true,
    persistence: mode,
    chain: STANDARD,
    rate: null,
    // Mosquitto's persistence is a periodic snapshot, not a per-message store: only comparable in memory.
    targets: mode === "memory" ? ["aedes", "native", "wasm", "mosquitto"] : ["aedes", "native", "wasm"],
    quick: false,
    about: `p2p QoS 1 64B to a persistent (clean=false) subscriber: each delivery is stored, updated and deleted in the ${mode} persistence`,
  };
}

/** What the v5 layer costs 3.1.1 traffic: these scenarios also run wasmq without it. */
function withNoV5(s: Scenario): Scenario {
  return { ...s, targets: [...s.targets, "wasm-no-v5"] };
}

/** p2p QoS 1 64 B with MQTT 5 clients: aedes 1.2 refuses MQTT 5, so its row is its 3.1.1 run (labelled). */
function v5(aliases: boolean): Scenario {
  return {
    ...p2p(1, "64B", 64, false),
    id: aliases ? "p2p-qos1-64B-v5-alias" : "p2p-qos1-64B-v5",
    targets: ["aedes", "native", "wasm", "mosquitto"],
    quick: false,
    protocol: 5,
    topicAliases: aliases,
    about: aliases
      ? "p2p-qos1-64B with MQTT 5 clients using topic aliases both ways (publisher → broker, broker → subscriber where the broker offers them)"
      : "p2p-qos1-64B with MQTT 5 clients (no properties on the messages), standard chain",
  };
}

function latency(qos: 0 | 1, quick: boolean): Scenario {
  return {
    id: `latency10k-qos${qos}-64B`,
    publishers: 1,
    subscribers: 1,
    qos,
    payloadBytes: 64,
    persistentSubscribers: false,
    persistence: null,
    chain: STANDARD,
    rate: 10_000,
    // echo: the generator's and the machine's floor (bench/echo-broker.ts), run only when asked for
    targets: ["aedes", "native", "wasm", "mosquitto", "echo"],
    quick,
    about: `p2p QoS ${qos} 64B at a fixed 10k msg/s: latency at a realistic load, standard chain`,
    // a p99 over 1 s (10,000 samples) is set by one or two stalls: longer windows and more repetitions
    // (10 s: the quiet run's one-off 1.00 ms repetition at 5 s broke max/min ≤ 2; bench/README.md "tail2")
    minDurationSec: 10,
    minReps: 5,
  };
}

/**
 * The 16 KB path at the same pace for every target: with no target saturated,
 * CPU µs per message compares the work each does per message, which holds up
 * on a loaded machine where closed-loop rates do not.
 */
function paced16KB(qos: 0 | 1): Scenario {
  return {
    ...latency(qos, false),
    id: `rate2k-qos${qos}-16KB`,
    payloadBytes: 16 * 1024,
    rate: 2_000,
    targets: ["aedes", "native", "wasm", "wasm-nofuel"],
    about: `p2p QoS ${qos} 16 KB JSON at a fixed 2,000 msg/s, standard chain: CPU per message at an equal pace`,
    // not the latency scenarios' longer window and extra repetitions
    minDurationSec: undefined,
    minReps: undefined,
  };
}

/** Idle devices: the 19,000 fits the 20,000 open files a process may have on this machine class. */
function idle(id: string, chain: ChainSpec, targets: readonly TargetName[], what: string): Scenario {
  return {
    id,
    publishers: 0,
    subscribers: 0,
    qos: 1,
    payloadBytes: 0,
    persistentSubscribers: false,
    persistence: null,
    chain,
    rate: null,
    targets,
    quick: false,
    conns: 19_000,
    about: `19,000 clients connect and subscribe to one topic each (QoS 1), then stay idle: KB per connection, RSS, connect rate; ${what}`,
  };
}

export const SCENARIOS: readonly Scenario[] = [
  ...SIZES.map(([label, bytes]) => (label === "64B" ? withNoV5(p2p(0, label, bytes, true)) : p2p(0, label, bytes, false))),
  ...SIZES.map(([label, bytes]) => (label === "64B" ? withNoV5(p2p(1, label, bytes, true)) : p2p(1, label, bytes, false))),
  v5(false),
  v5(true),
  {
    id: "fanout100-qos0-64B",
    publishers: 1,
    subscribers: 100,
    qos: 0,
    payloadBytes: 64,
    persistentSubscribers: false,
    persistence: null,
    chain: STANDARD,
    rate: null,
    targets: ALL,
    quick: true,
    about: "1 publisher → 100 subscribers of the same topic, QoS 0 64B (throughput counts deliveries)",
  },
  {
    id: "fanin100-qos0-64B",
    publishers: 100,
    subscribers: 1,
    qos: 0,
    payloadBytes: 64,
    persistentSubscribers: false,
    persistence: null,
    chain: STANDARD,
    rate: null,
    targets: ALL,
    quick: false,
    about: "100 publishers → 1 subscriber of bench/+/data, QoS 0 64B",
  },
  withNoV5(chain(0, false)),
  chain0Large(),
  chain(1, false),
  chain(3, false),
  chain(5, true),
  persistenceScenario("lmdb"),
  persistenceScenario("memory"),
  latency(0, true),
  latency(1, false),
  paced16KB(0),
  paced16KB(1),
  idle("idle19k-conns", STANDARD, ["aedes", "native", "wasm", "mosquitto"], "standard chain (auth hashes each password)"),
  idle("idle19k-conns-noauth", { kind: "length", length: 3 }, ["aedes", "native", "wasm"], "acl + filter + router, no auth: the connect path comparable to bare aedes"),
];

export function scenarioById(id: string): Scenario {
  const s = SCENARIOS.find((x) => x.id === id);
  if (!s) throw new Error(`unknown scenario "${id}"; known: ${SCENARIOS.map((x) => x.id).join(", ")}`);
  return s;
}
