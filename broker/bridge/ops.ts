/**
 * What operators see of the bridges: a status object (admin API
 * `GET /bridges`, `GET /bridges/:name` in admin-route.ts, `wasmq admin bridges`), Prometheus
 * metrics (read at scrape time from the bridges' own counters), and $SYS
 * figures (`$SYS/broker/bridges/<name>/...`, plus Mosquitto's
 * `$SYS/broker/connection/<name>/state`).
 */
import type { Aedes } from "aedes";
import type { Registry } from "prom-client";
import { gauge, mirroredCounter, type Labels } from "../ops/scrape-metrics.js";
import type { Bridge } from "./bridge.js";
import { bridgesOf } from "./index.js";

export function bridgeStatus(b: Bridge, now = Date.now()): Record<string, unknown> {
  const oldest = b.queue.oldestAt;
  const c = b.counters;
  return {
    name: b.cfg.name,
    connected: b.connected,
    url: b.upstream.url,
    urls: b.cfg.urls,
    clientId: b.cfg.clientId,
    localClientId: b.clientId,
    protocolVersion: b.cfg.protocolVersion,
    connects: b.upstream.connects,
    lastError: b.upstream.lastError,
    queue: {
      messages: b.queue.depth,
      bytes: b.queue.bytes,
      oldestAgeSec: oldest === null ? null : Math.max(0, (now - oldest) / 1000),
      inflight: b.inflightCount,
      window: b.sendWindow,
      maxMessages: b.cfg.maxMessages,
      maxBytes: b.cfg.maxBytes,
      onFull: b.cfg.onFull,
    },
    forwarded: c.forwarded,
    received: c.received,
    dropped: { ...c.dropped },
    resent: c.resent,
    pubrelResent: c.pubrelResent,
    ackTimeouts: c.ackTimeouts,
    filtered: { ...c.filtered },
    echoesSuppressed: c.echoes,
    echoFilter: { mode: b.cfg.echoFilter, active: b.echoFilterOn(), windowMs: b.cfg.echoWindowMs },
    bridgeFlag: b.upstream.bridgeFlag,
    qos2: { awaitingPubcomp: b.queue.releasedSeqs().length, awaitingPubrel: b.inbound.size },
    bytesOut: c.bytesOut,
    bytesIn: c.bytesIn,
    out: b.cfg.out,
    in: b.cfg.in,
  };
}

export function registerBridgeMetrics(registry: Registry, aedes: Aedes): void {
  const each = (f: (b: Bridge) => [Labels, number][]) => () => bridgesOf(aedes).flatMap(f);
  const one = (f: (b: Bridge) => number) => each((b) => [[{ bridge: b.cfg.name }, f(b)]]);
  gauge(registry, "wasmq_bridge_connected", "1 while the bridge is connected to its upstream", ["bridge"], one((b) => (b.connected ? 1 : 0)));
  gauge(registry, "wasmq_bridge_queue_messages", "Messages stored for the upstream and not yet acknowledged by it", ["bridge"], one((b) => b.queue.depth));
  gauge(registry, "wasmq_bridge_queue_bytes", "Topic and payload bytes of the queued messages", ["bridge"], one((b) => b.queue.bytes));
  gauge(registry, "wasmq_bridge_queue_oldest_age_seconds", "Age of the oldest queued message (0 when the queue is empty)", ["bridge"], one((b) => {
    const at = b.queue.oldestAt;
    return at === null ? 0 : Math.max(0, (Date.now() - at) / 1000);
  }));
  gauge(registry, "wasmq_bridge_inflight", "Messages sent to the upstream and not yet acknowledged", ["bridge"], one((b) => b.inflightCount));
  mirroredCounter(registry, "wasmq_bridge_connects_total", "Successful connections to the upstream", ["bridge"], one((b) => b.upstream.connects));
  mirroredCounter(registry, "wasmq_bridge_forwarded_total", "Messages the upstream acknowledged (QoS 0: written to it)", ["bridge"], one((b) => b.counters.forwarded));
  mirroredCounter(registry, "wasmq_bridge_received_total", "Messages from the upstream published locally", ["bridge"], one((b) => b.counters.received));
  mirroredCounter(registry, "wasmq_bridge_resent_total", "Messages sent again (DUP) after a reconnect or restart", ["bridge"], one((b) => b.counters.resent));
  mirroredCounter(registry, "wasmq_bridge_pubrel_resent_total", "QoS 2 messages resumed with PUBREL after a reconnect or restart (the upstream kept the session)", ["bridge"], one((b) => b.counters.pubrelResent));
  mirroredCounter(registry, "wasmq_bridge_ack_timeouts_total", "Connections dropped because the upstream left a PUBLISH or a resumed PUBREL unanswered for ackTimeoutMs", ["bridge"], one((b) => b.counters.ackTimeouts));
  mirroredCounter(registry, "wasmq_bridge_echoes_suppressed_total", "Inbound messages dropped by the echo heuristic (topic and payload equal to one sent up within echoWindowMs)", ["bridge"], one((b) => b.counters.echoes));
  mirroredCounter(registry, "wasmq_bridge_dropped_total", "Messages lost to a full queue (reason drop-oldest / drop-new), refused by the upstream (rejected) or expired while queued (expired)", ["bridge", "reason"], each((b) =>
    Object.entries(b.counters.dropped).map(([reason, v]): [Labels, number] => [{ bridge: b.cfg.name, reason }, v]),
  ));
  mirroredCounter(registry, "wasmq_bridge_filtered_total", "Messages a plugin kept from crossing, by direction", ["bridge", "direction"], each((b) => [
    [{ bridge: b.cfg.name, direction: "out" }, b.counters.filtered.out],
    [{ bridge: b.cfg.name, direction: "in" }, b.counters.filtered.in],
  ]));
  mirroredCounter(registry, "wasmq_bridge_bytes_total", "Payload bytes that crossed, by direction", ["bridge", "direction"], each((b) => [
    [{ bridge: b.cfg.name, direction: "out" }, b.counters.bytesOut],
    [{ bridge: b.cfg.name, direction: "in" }, b.counters.bytesIn],
  ]));
}

/** $SYS figures, relative to `$SYS/broker/`. */
export function bridgeSysFigures(aedes: Aedes): [string, number][] {
  return bridgesOf(aedes).flatMap((b): [string, number][] => {
    const p = `bridges/${b.cfg.name}`;
    const c = b.counters;
    const oldest = b.queue.oldestAt;
    return [
      [`connection/${b.cfg.name}/state`, b.connected ? 1 : 0],
      [`${p}/connected`, b.connected ? 1 : 0],
      [`${p}/queue/messages`, b.queue.depth],
      [`${p}/queue/bytes`, b.queue.bytes],
      [`${p}/queue/oldest age`, oldest === null ? 0 : Math.round((Date.now() - oldest) / 1000)],
      [`${p}/messages/forwarded`, c.forwarded],
      [`${p}/messages/received`, c.received],
      [`${p}/messages/dropped`, c.dropped["drop-oldest"] + c.dropped["drop-new"] + c.dropped.rejected + c.dropped.expired],
      [`${p}/messages/resent`, c.resent],
    ];
  });
}
