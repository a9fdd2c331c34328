// Deliveries (broker/protocol/outgoing-publish.ts, "Deliveries in batches") are written from one
// immediate per batch instead of aedes' two immediates (and two closures) per
// delivery, in the order they were routed, to every subscriber, at QoS 0 and
// at QoS 1 to a clean session (one order for both QoS); a persistent session's
// QoS 1 delivery, recorded first from an immediate of its own, keeps each QoS's
// order and its record is cleared by its PUBACK.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { MqttClient } from "mqtt";
import { connect, end, startTestBroker, subscribe } from "./helpers.js";
import { until } from "./store-support.js";

function collect(client: MqttClient, n: number): Promise<string[]> {
  const got: string[] = [];
  return new Promise((resolve) => {
    client.on("message", (topic, payload) => {
      got.push(`${topic} ${payload.toString()}`);
      if (got.length === n) resolve(got);
    });
  });
}

for (const qos of [0, 1] as const) {
  test(`a burst of QoS ${qos} messages reaches three subscribers whole and in order, with fewer immediates than deliveries`, { timeout: 60_000 }, async () => {
    const broker = await startTestBroker({ persistence: "memory" });
    const subs: MqttClient[] = [];
    let pub: MqttClient | undefined;
    const realSetImmediate = globalThis.setImmediate;
    try {
      for (let i = 0; i < 3; i++) {
        const s = await connect(broker.url);
        await subscribe(s, "burst/#", qos);
        subs.push(s);
      }
      pub = await connect(broker.url);
      const N = 500;
      const want = Array.from({ length: N }, (_, i) => `burst/${i % 7} m${i}`);
      const all = subs.map((s) => collect(s, N));
      let immediates = 0;
      globalThis.setImmediate = ((...args: Parameters<typeof setImmediate>) => {
        immediates++;
        return realSetImmediate(...args);
      }) as typeof setImmediate;
      // corked: the messages reach the broker in as few reads as the socket allows
      const stream = (pub as unknown as { stream: { cork(): void; uncork(): void } }).stream;
      stream.cork();
      for (let i = 0; i < N; i++) pub.publish(`burst/${i % 7}`, `m${i}`, { qos });
      stream.uncork();
      const got = await Promise.all(all);
      globalThis.setImmediate = realSetImmediate;
      for (const g of got) assert.deepEqual(g, want);
      // aedes' deliver0 and deliverQoS took two immediates per delivery (3 × 500 deliveries: ≥ 3,000)
      assert.ok(immediates < 3 * N, `${immediates} immediates for ${3 * N} deliveries`);
    } finally {
      globalThis.setImmediate = realSetImmediate;
      await end(pub, ...subs);
      await broker.stop();
    }
  });
}

for (const clean of [true, false]) {
  test(`QoS 0 and QoS 1 messages to one ${clean ? "clean" : "persistent"} subscriber: each QoS in order, none lost`, { timeout: 60_000 }, async () => {
    const broker = await startTestBroker({ persistence: "memory" });
    let sub: MqttClient | undefined;
    let pub: MqttClient | undefined;
    try {
      sub = await connect(broker.url, { clientId: `mix-${clean}`, clean });
      await subscribe(sub, "mix/#", 1);
      pub = await connect(broker.url);
      const N = 400;
      const all = collect(sub, N);
      for (let i = 0; i < N; i++) pub.publish(`mix/q${i % 2}`, `m${i}`, { qos: (i % 2) as 0 | 1 });
      const got = await all;
      for (const q of [0, 1]) {
        const want = Array.from({ length: N }, (_, i) => i).filter((i) => i % 2 === q).map((i) => `mix/q${q} m${i}`);
        assert.deepEqual(got.filter((m) => m.startsWith(`mix/q${q} `)), want);
      }
      if (clean) {
        // one batch for both QoS: exactly the order they were published in
        assert.deepEqual(got, Array.from({ length: N }, (_, i) => `mix/q${i % 2} m${i}`));
      } else {
        // every in-flight copy recorded for the session is cleared by its PUBACK
        const store = (broker.aedes as unknown as { persistence: { queuedCount(id: string): number } }).persistence;
        await until(() => store.queuedCount("mix-false") === 0, "the session's in-flight messages to be acknowledged");
      }
    } finally {
      await end(pub, sub);
      await broker.stop();
    }
  });
}
