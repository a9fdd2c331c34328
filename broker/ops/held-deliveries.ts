/**
 * What holding QoS 1 deliveries from the disk does (`writeHoldMs`,
 * persistence/lmdb/held-puts.ts; broker/OPERATIONS.md "Deliveries
 * acknowledged before they are written"), for operators: Prometheus metrics
 * and `$SYS` figures. The store keeps plain counters; they are read here when
 * scraped or published, never on the message path. LMDB only: with another
 * store (memory, cluster) the metrics are absent and no `$SYS` figure is
 * published.
 */
import type { Registry } from "prom-client";
import type { HoldFigures } from "../persistence/lmdb/held-puts.js";
import { gauge, mirroredCounter, type Labels } from "./scrape-metrics.js";
import type { StoreFigures } from "./store-figures.js";

export type { HoldFigures };

/** Metric names, as documented in OPERATIONS.md (the tests read them from here). */
export const HELD_DELIVERY_METRICS = {
  holdSeconds: "wasmq_write_hold_seconds",
  held: "wasmq_held_deliveries_total",
  droppedUnwritten: "wasmq_held_deliveries_dropped_unwritten_total",
  written: "wasmq_held_deliveries_written_total",
  current: "wasmq_held_deliveries_current",
  writtenWait: "wasmq_held_deliveries_written_wait_seconds_total",
  writtenFirst: "wasmq_held_deliveries_written_first_total",
  mode: "wasmq_write_hold_mode",
  sessions: "wasmq_write_hold_sessions",
} as const;

export function registerHeldDeliveryMetrics(registry: Registry, store: StoreFigures): void {
  const holds = store.holds?.bind(store);
  if (!holds) return; // not LMDB: not registered at all (a label-less metric would read 0)
  const read = (pick: (f: HoldFigures) => number) => (): [Labels, number][] => [[{}, pick(holds())]];
  const m = HELD_DELIVERY_METRICS;
  gauge(registry, m.holdSeconds, "Configured writeHoldMs in seconds: how long a QoS 1 delivery to a connected persistent session waits for its PUBACK before it is written (0 = written before it is sent)", [], read((f) => f.holdMs / 1000));
  mirroredCounter(registry, m.held, "QoS 1 deliveries to connected persistent sessions held from the disk for their PUBACK", [], read((f) => f.held));
  mirroredCounter(registry, m.droppedUnwritten, "Held deliveries the subscriber acknowledged within the hold: never written", [], read((f) => f.droppedUnwritten));
  mirroredCounter(registry, m.written, "Held deliveries written (the hold ran out, another write needed the entry, or shutdown)", [], read((f) => f.written));
  gauge(registry, m.current, "QoS 1 deliveries held from the disk right now", [], read((f) => f.current));
  mirroredCounter(
    registry,
    m.writtenWait,
    "Seconds the written held deliveries spent held before their write was issued, summed: the PUBACK latency the hold added to their publishers (divide by wasmq_held_deliveries_written_total for the mean)",
    [],
    read((f) => f.writtenWaitSeconds),
  );
  // writeHold "adaptive": the per-session decision (persistence/lmdb/ack-pace.ts)
  mirroredCounter(
    registry,
    m.writtenFirst,
    "QoS 1 deliveries to connected persistent sessions written at once, not held, because their subscriber usually acknowledges later than writeHoldMs (writeHold adaptive; 0 with fixed)",
    [],
    read((f) => f.writtenFirst),
  );
  gauge(registry, m.mode, "The write hold's mode (writeHold): 1 for the configured one", ["mode"], () => {
    const mode = holds().mode;
    return [
      [{ mode: "adaptive" }, mode === "adaptive" ? 1 : 0],
      [{ mode: "fixed" }, mode === "fixed" ? 1 : 0],
    ];
  });
  gauge(registry, m.sessions, "Persistent sessions the adaptive write hold tracks, by its current decision for their deliveries (hold / write_first)", ["decision"], () => {
    const f = holds();
    return [
      [{ decision: "hold" }, f.sessionsHolding],
      [{ decision: "write_first" }, f.sessionsWritingFirst],
    ];
  });
}

/** `$SYS/broker/store/held/...` figures (Mosquitto has none: named in its style). */
export function heldDeliverySysFigures(store: StoreFigures): [string, number | string][] {
  const f = store.holds?.();
  if (!f) return [];
  return [
    ["store/held/hold ms", f.holdMs],
    ["store/held/count", f.current],
    ["store/held/total", f.held],
    ["store/held/dropped unwritten", f.droppedUnwritten],
    ["store/held/written", f.written],
    ["store/held/written wait seconds", f.writtenWaitSeconds.toFixed(3)],
    ["store/held/mode", f.mode],
    ["store/held/written first", f.writtenFirst],
    ["store/held/sessions holding", f.sessionsHolding],
    ["store/held/sessions writing first", f.sessionsWritingFirst],
  ];
}
