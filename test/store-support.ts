/** The write-hold suites' view of a broker's store: GET /store, and waiting on it. */
import assert from "node:assert/strict";
import type { StoreView } from "../broker/ops/admin-store.js";
import mqtt, { type MqttClient } from "mqtt";
import type { TestBroker } from "./helpers.js";

export async function store(broker: TestBroker): Promise<StoreView> {
  const res = await fetch(`${broker.admin!.url}/store`);
  assert.equal(res.status, 200);
  return (await res.json()) as StoreView;
}

/** Poll `condition` until it holds; the timeout is a safety net against a hang, not a speed requirement. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A write hold that has done nothing yet: every figure 0. */
export function idleHold(holdMs: number, mode: "adaptive" | "fixed"): NonNullable<StoreView["writeHold"]> {
  return { holdMs, mode, held: 0, droppedUnwritten: 0, written: 0, current: 0, writtenWaitSeconds: 0, writtenFirst: 0, sessionsHolding: 0, sessionsWritingFirst: 0 };
}

/** A persistent MQTT 5 subscriber to `topic` (QoS 1) that never acknowledges: mqtt.js withholds a PUBACK only under MQTT 5. */
export async function muteSubscriber(url: string, clientId: string, topic: string): Promise<MqttClient> {
  const sub = await mqtt.connectAsync(url, {
    clientId,
    clean: false,
    reconnectPeriod: 0,
    protocolVersion: 5,
    properties: { sessionExpiryInterval: 3600 },
    customHandleAcks: () => {},
  });
  await sub.subscribeAsync(topic, { qos: 1 });
  return sub;
}
