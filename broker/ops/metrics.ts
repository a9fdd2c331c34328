/**
 * Prometheus metrics, in a Registry of this broker's own (tests run several
 * brokers in one process). Almost everything is read when scraped, through
 * collect() callbacks, from numbers the broker keeps anyway (BrokerStats, the
 * ConnectionTracker, each plugin slot's stats): scraping costs the broker
 * nothing between scrapes.
 *
 * The one metric measured on the message path is the plugin call-duration
 * histogram. Reading the clock around every call would cost more than many
 * calls themselves (a Wasm call is tens of nanoseconds), so one call in
 * `timingSampleEvery` per plugin is timed with process.hrtime.bigint(). The
 * histogram's _count is the number of sampled calls, not of calls: use
 * wasmq_plugin_calls_total for those.
 */
import type { Aedes, Client } from "aedes";
import { Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { HookName, PluginChain, PluginSlot } from "../../host/index.js";
import type { ConnectionTracker } from "../net/connections.js";
import { LIMIT_NAMES, type BrokerStats } from "./stats.js";
import type { StoreFigures } from "./store-figures.js";
import { registerBridgeMetrics } from "../bridge/ops.js";
import { gauge, mirroredCounter, type Labels } from "./scrape-metrics.js";
import { registerHeldDeliveryMetrics } from "./held-deliveries.js";

export interface MetricsSources {
  aedes: Aedes;
  chain: PluginChain;
  stats: BrokerStats;
  tracker: ConnectionTracker;
  store: StoreFigures;
  version: string;
  aedesVersion: string;
  timingSampleEvery: number;
}

export interface BrokerMetrics {
  readonly registry: Registry;
  render(): Promise<string>;
  readonly contentType: string;
}

const HOOKS: HookName[] = ["connect", "subscribe", "publish", "deliver", "persist", "tick", "auth"];
const QOS = ["0", "1", "2"] as const;
const BREAKER_STATES = ["closed", "half-open", "open"] as const;
/** From a microsecond (a native or small Wasm call) to a tenth of a second (a fuel-exhausting loop). */
const CALL_BUCKETS = [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 2.5e-3, 1e-2, 2.5e-2, 0.1];

export function createMetrics(src: MetricsSources): BrokerMetrics {
  const registry = new Registry();
  const { aedes, chain, stats, tracker, store } = src;
  collectDefaultMetrics({ register: registry });

  gauge(registry, "wasmq_build_info", "Version of wasmq and of aedes under it (value is always 1)", ["version", "aedes"], () => [
    [{ version: src.version, aedes: src.aedesVersion }, 1],
  ]);
  gauge(registry, "wasmq_uptime_seconds", "Seconds since the broker started", [], () => [[{}, (Date.now() - stats.startedAt) / 1000]]);

  // Clients and connections
  gauge(registry, "wasmq_clients_connected", "MQTT clients connected (CONNACK sent, not yet gone)", [], () => [[{}, aedes.connectedClients]]);
  gauge(registry, "wasmq_clients_maximum", "Most clients connected at once since start", [], () => [[{}, stats.maxClients]]);
  gauge(registry, "wasmq_connections_open", "Open sockets on every listener, including ones that have not sent CONNECT", [], () => [[{}, tracker.open]]);
  mirroredCounter(registry, "wasmq_connections_accepted_total", "Sockets accepted by the listeners", [], () => [[{}, tracker.accepted]]);
  mirroredCounter(registry, "wasmq_connects_total", "CONNECTs answered, by result", ["result"], () => [
    [{ result: "accepted" }, stats.connectsAccepted],
    [{ result: "refused" }, stats.connectsRefused],
  ]);
  mirroredCounter(registry, "wasmq_disconnects_total", "Connected clients that went away (any reason)", [], () => [[{}, stats.disconnects]]);
  // ops/memory-settle.ts: the compacting GC after a connection burst, once the broker is quiet.
  mirroredCounter(registry, "wasmq_memory_settles_total", "Compacting GCs run after a connection burst, once the broker was quiet (memorySettle)", [], () => [[{}, stats.memorySettles]]);
  mirroredCounter(registry, "wasmq_memory_settle_released_bytes_total", "Resident memory the memory settles gave back", [], () => [[{}, stats.memorySettleReleasedBytes]]);
  mirroredCounter(registry, "wasmq_memory_settle_seconds_total", "Time the memory settles paused the broker", [], () => [[{}, stats.memorySettleSeconds]]);
  mirroredCounter(registry, "wasmq_protocol_errors_total", "Connections closed for breaking the protocol (malformed packets, bad flags, bad UTF-8...)", [], () => [
    [{}, stats.protocolErrors],
  ]);
  mirroredCounter(registry, "wasmq_limit_rejections_total", "Clients, packets or subscriptions turned away by a limit", ["limit"], () =>
    LIMIT_NAMES.map((limit): [Labels, number] => [{ limit }, limit === "maxConnections" ? tracker.refused : stats.limitRejections[limit]]),
  );

  // Messages and bytes
  mirroredCounter(registry, "wasmq_messages_received_total", "PUBLISH packets received from clients, by QoS", ["qos"], () =>
    QOS.map((qos, i): [Labels, number] => [{ qos }, stats.publishReceived[i]!]),
  );
  mirroredCounter(registry, "wasmq_messages_sent_total", "PUBLISH packets sent to clients, by QoS (after downgrades)", ["qos"], () =>
    QOS.map((qos, i): [Labels, number] => [{ qos }, stats.publishSent[i]!]),
  );
  mirroredCounter(registry, "wasmq_packets_received_total", "MQTT control packets received, every type", [], () => [[{}, stats.packetsReceived]]);
  mirroredCounter(registry, "wasmq_packets_sent_total", "MQTT control packets sent, every type", [], () => [[{}, stats.packetsSent]]);
  mirroredCounter(registry, "wasmq_bytes_received_total", "Bytes received on every listener's sockets (TLS and WebSocket framing included)", [], () => [
    [{}, tracker.bytesReceived()],
  ]);
  mirroredCounter(registry, "wasmq_bytes_sent_total", "Bytes sent on every listener's sockets (TLS and WebSocket framing included)", [], () => [[{}, tracker.bytesSent()]]);

  // Store and queues
  gauge(registry, "wasmq_retained_messages", "Retained messages stored", [], async () => [[{}, await store.retainedCount()]]);
  gauge(registry, "wasmq_persistent_sessions", "Sessions with CleanSession=0 that have subscriptions (connected or not)", [], async () => [
    [{}, (await store.offline()).clientsCount],
  ]);
  gauge(registry, "wasmq_subscriptions", "Subscriptions: those of persistent sessions plus those of connected clean sessions", [], async () => [
    [{}, await store.subscriptionCount(aedes)],
  ]);
  // Only where the store can count: a label-less gauge left unset would read 0, a wrong figure.
  if (store.mode === "lmdb") {
    gauge(registry, "wasmq_queued_messages", "QoS 1/2 messages stored for sessions (offline queue and in flight); LMDB only", [], async () => [[{}, (await store.queuedCount()) ?? 0]]);
  }
  gauge(registry, "wasmq_send_queue_bytes", "Bytes written to client sockets and not yet sent, summed over clients", [], () => [[{}, sendQueue(aedes).total]]);
  gauge(registry, "wasmq_send_queue_max_bytes", "Largest send backlog of a single client, in bytes", [], () => [[{}, sendQueue(aedes).max]]);
  registerHeldDeliveryMetrics(registry, store);

  registerPluginMetrics(registry, chain, src.timingSampleEvery);
  registerBridgeMetrics(registry, aedes);

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
  };
}

function sendQueue(aedes: Aedes): { total: number; max: number } {
  let total = 0;
  let max = 0;
  const clients = (aedes as unknown as { clients: Record<string, Client> }).clients;
  for (const id in clients) {
    const n = (clients[id]!.conn as { writableLength?: number }).writableLength ?? 0;
    total += n;
    if (n > max) max = n;
  }
  return { total, max };
}

function registerPluginMetrics(registry: Registry, chain: PluginChain, sampleEvery: number): void {
  const slots = chain.slots;
  const each = <T>(fn: (slot: PluginSlot) => Iterable<T>): T[] => slots.flatMap((s) => [...fn(s)]);

  mirroredCounter(registry, "wasmq_plugin_calls_total", "Calls into each plugin, by hook (including calls answered by the failure policy)", ["plugin", "hook"], () =>
    each((s) => HOOKS.filter((h) => s.stats.calls[h] > 0 || s.hooks.has(h)).map((hook): [Labels, number] => [{ plugin: s.name, hook }, s.stats.calls[hook]])),
  );
  mirroredCounter(registry, "wasmq_plugin_verdicts_total", "Verdicts each plugin returned (modified counts continues that changed the message)", ["plugin", "verdict"], () =>
    each((s) => Object.entries(s.stats.verdicts).map(([verdict, n]): [Labels, number] => [{ plugin: s.name, verdict }, n])),
  );
  mirroredCounter(registry, "wasmq_plugin_traps_total", "Plugin calls that trapped, by kind (fuel, memory, out-of-bounds, abort, unreachable, stack, host-limit, invalid-output, error)", ["plugin", "kind"], () =>
    each((s) => Object.entries(s.stats.traps).map(([kind, n]): [Labels, number] => [{ plugin: s.name, kind }, n ?? 0])),
  );
  mirroredCounter(registry, "wasmq_plugin_fuel_exhaustions_total", "Plugin calls stopped because they used up their fuel (CPU budget)", ["plugin"], () =>
    slots.map((s): [Labels, number] => [{ plugin: s.name }, s.stats.traps.fuel ?? 0]),
  );
  mirroredCounter(registry, "wasmq_plugin_failures_total", "Messages the failure policy answered (trap, open breaker, instance restarting)", ["plugin"], () =>
    slots.map((s): [Labels, number] => [{ plugin: s.name }, s.stats.failures]),
  );
  mirroredCounter(registry, "wasmq_plugin_restarts_total", "Fresh instances started after a trap", ["plugin"], () => slots.map((s): [Labels, number] => [{ plugin: s.name }, s.stats.restarts]));
  mirroredCounter(registry, "wasmq_plugin_reloads_total", "Hot reloads, by result (failed = refused, the previous build kept running)", ["plugin", "result"], () =>
    each((s): [Labels, number][] => [
      [{ plugin: s.name, result: "ok" }, s.stats.reloads],
      [{ plugin: s.name, result: "failed" }, s.stats.reloadFailures],
    ]),
  );
  gauge(registry, "wasmq_plugin_breaker_state", "Circuit breaker state of each plugin (1 for the current state)", ["plugin", "state"], () =>
    each((s) => BREAKER_STATES.map((state): [Labels, number] => [{ plugin: s.name, state }, s.breakerState === state ? 1 : 0])),
  );
  gauge(registry, "wasmq_plugin_enabled", "1 when the plugin is enabled", ["plugin"], () => slots.map((s): [Labels, number] => [{ plugin: s.name }, s.enabled ? 1 : 0]));
  gauge(registry, "wasmq_plugin_ready", "1 when the plugin has a running instance", ["plugin"], () => slots.map((s): [Labels, number] => [{ plugin: s.name }, s.ready ? 1 : 0]));
  gauge(registry, "wasmq_plugin_fuel_used_last", "Fuel the plugin's last successful Wasm call used (-1 for native plugins or before the first call)", ["plugin"], () =>
    slots.map((s): [Labels, number] => [{ plugin: s.name }, s.stats.fuelUsedLast]),
  );

  const duration = new Histogram({
    name: "wasmq_plugin_call_duration_seconds",
    help: `Time per plugin call, sampled: one call in ${sampleEvery} per plugin is timed`,
    labelNames: ["plugin", "hook"],
    buckets: CALL_BUCKETS,
    registers: [registry],
  });
  for (const slot of slots) timeSampledCalls(slot, duration, sampleEvery);
}

/**
 * Time one call in `every` of this slot. The slot object survives reloads (it
 * swaps instances inside), so wrapping its `run` once covers the plugin's life.
 */
function timeSampledCalls(slot: PluginSlot, duration: Histogram<"plugin" | "hook">, every: number): void {
  const run = slot.run.bind(slot);
  const observers = new Map<string, { observe(v: number): void }>();
  const observer = (hook: string) => {
    let o = observers.get(hook);
    if (!o) {
      o = duration.labels(slot.name, hook);
      observers.set(hook, o);
    }
    return o;
  };
  let countdown = every;
  slot.run = (hook, msg, out) => {
    if (--countdown > 0) return run(hook, msg, out);
    countdown = every;
    const start = process.hrtime.bigint();
    const verdict = run(hook, msg, out);
    observer(hook).observe(Number(process.hrtime.bigint() - start) / 1e9);
    return verdict;
  };
}
