// retention: the Wasm build against its native twin on generated persist and
// connect traffic, its config checks, and its behaviour through a real broker
// on LMDB (which topics are retained, retained and queued TTLs, queue caps).
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { assertConfigRefused, assertExampleConfigLoads, assertTwinsAgree, pick, prng, type TimedMessage } from "./differential-state.js";
import { brokerForgot, collect, connect, connectCollecting, end, native, settle, startTestBroker, subscribe, wasm, type TestBroker } from "./helpers.js";

const RETAINED = 0;
const OFFLINE_QUEUE = 1;

function retentionSteps(seed: number, count: number): TimedMessage[] {
  const random = prng(seed);
  const clients = ["dev-0", "dev-1", "dev-2", "dev-3", "tablette-ü"];
  const topics = ["status/dev-1", "status/private/key", "tmp/x", "config/a", "config/a/b", "telemetry/t", "alerts/fire", "misc", "$SYS/x"];
  const steps: TimedMessage[] = [];
  for (let i = 0; i < count; i++) {
    const r = random();
    const clientId = pick(random, clients);
    const message =
      r < 0.08
        ? { hook: "connect" as const, clientId }
        : { hook: "persist" as const, topic: pick(random, topics), clientId, payload: "p", qos: 1, flags: r < 0.4 ? RETAINED : r < 0.98 ? OFFLINE_QUEUE : 2 };
    steps.push({ at: 1_700_000_000_000 + i, message });
  }
  return steps;
}

describe("retention: Wasm and native twins agree", () => {
  test("retain rules, queue rules and TTLs, per-client caps reset on connect, restarts (600 messages)", async () => {
    const config = {
      retain: [
        { topic: "status/private/#", allow: false },
        { topic: "status/#", allow: true, ttlSec: 3600 },
        { topic: "tmp/#", allow: false },
        { topic: "config/+", ttlSec: 0 },
      ],
      queue: [
        { topic: "telemetry/#", allow: false },
        { topic: "alerts/#", ttlSec: 86400 },
        { topic: "#", ttlSec: 600 },
      ],
      maxQueuedPerClient: 5,
      maxCachedClients: 3,
    };
    const results = await assertTwinsAgree("retention", config, retentionSteps(3, 600), [200, 400]);
    const persisted = results.filter((r) => r.hook === "persist");
    assert.ok(persisted.some((r) => r.verdict === "drop"));
    assert.ok(persisted.some((r) => r.ttlSec === 3600) && persisted.some((r) => r.ttlSec === 600) && persisted.some((r) => r.ttlSec === 86400));
    assert.ok(results.some((r) => r.logs.some((l) => l.includes("reached maxQueuedPerClient (5)"))), "some client hits its cap");
  });

  test("retainOthers and no cap (500 messages)", async () => {
    const config = { retain: [{ topic: "tmp/#", allow: false }], retainOthers: true };
    const results = await assertTwinsAgree("retention", config, retentionSteps(4, 500));
    assert.ok(results.every((r) => r.ttlSec === undefined));
    assert.ok(results.some((r) => r.verdict === "drop") && results.some((r) => r.hook === "persist" && r.verdict === "continue"));
  });

  test("bad configs are refused by both twins, naming the key", async () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ retain: "status/#" }, /config\.retain must be an array/],
      [{ retain: [{ topic: "a/#/b" }] }, /retain\.0\.topic must be an MQTT topic filter/],
      [{ queue: [{ topic: "a", ttlSec: -5 }] }, /config\.queue\.0\.ttlSec must be a whole number from 0 to 315360000/],
      [{ maxQueuedPerClient: 2.5 }, /config\.maxQueuedPerClient must be a whole number/],
    ];
    for (const [config, expected] of bad) await assertConfigRefused("retention", config, expected);
  });

  test("config.example.json is accepted by both twins", () => assertExampleConfigLoads("retention"));
});



async function payloadsAfterSettle(sub: MqttClient, got: ReturnType<typeof collect>): Promise<string[]> {
  await settle(sub);
  return got.messages.map((m) => `${m.topic}=${m.payload.toString()}`);
}

for (const kind of ["wasm", "native"] as const) {
  describe(`retention through the broker (${kind}, LMDB)`, () => {
    let broker: TestBroker;
    before(async () => {
      broker = await startTestBroker({
        plugins: [
          {
            name: "retention",
            ...(kind === "wasm" ? { wasm: wasm("retention") } : { native: native("retention") }),
            config: {
              retain: [
                { topic: "status/#", allow: true },
                { topic: "short/#", allow: true, ttlSec: 1 },
              ],
              queue: [
                { topic: "telemetry/#", allow: false },
                { topic: "expiring/#", ttlSec: 1 },
              ],
              maxQueuedPerClient: 3,
            },
          },
        ],
      });
    });
    after(() => broker.stop());

    test("only allowed topics are retained; live delivery is unaffected", async () => {
      const live = await connect(broker.url);
      const gotLive = collect(live);
      await subscribe(live, ["status/#", "chatter/#"], 1);
      const pub = await connect(broker.url);
      await pub.publishAsync("status/dev-1", "online", { qos: 1, retain: true });
      await pub.publishAsync("chatter/dev-1", "hello", { qos: 1, retain: true });
      await gotLive.waitFor(2);
      const later = await connect(broker.url);
      const gotLater = collect(later);
      await subscribe(later, ["status/#", "chatter/#"], 1);
      await gotLater.waitFor(1);
      assert.deepEqual(await payloadsAfterSettle(later, gotLater), ["status/dev-1=online"]);
      await end(live, pub, later);
    });

    test("an offline session queues at most 3 messages, skips telemetry, and the count restarts when it reconnects", async () => {
      const session = { clientId: `offline-${kind}`, clean: false };
      let sub = await connect(broker.url, session);
      await subscribe(sub, ["q/#", "telemetry/#"], 1);
      await end(sub);
      await brokerForgot(broker, session.clientId);
      const pub = await connect(broker.url);
      await pub.publishAsync("telemetry/t", "not queued", { qos: 1 });
      for (let i = 0; i < 6; i++) await pub.publishAsync(`q/${i}`, String(i), { qos: 1 });

      let got;
      ({ client: sub, got } = await connectCollecting(broker.url, session));
      await got.waitFor(3);
      assert.deepEqual(await payloadsAfterSettle(sub, got), ["q/0=0", "q/1=1", "q/2=2"]);
      await end(sub);
      await brokerForgot(broker, session.clientId);
      for (let i = 6; i < 8; i++) await pub.publishAsync(`q/${i}`, String(i), { qos: 1 });

      ({ client: sub, got } = await connectCollecting(broker.url, session));
      await got.waitFor(2);
      assert.deepEqual(await payloadsAfterSettle(sub, got), ["q/6=6", "q/7=7"], "reconnecting reset the count");
      await end(sub, pub);
    });

    test("retained and queued messages with a 1 s TTL are gone 1.5 s later, others stay", async () => {
      const session = { clientId: `expiry-${kind}`, clean: false };
      let sub = await connect(broker.url, session);
      await subscribe(sub, ["expiring/#", "q/#"], 1);
      await end(sub);
      await brokerForgot(broker, session.clientId);
      const pub = await connect(broker.url);
      await pub.publishAsync("short/dev-2", "soon gone", { qos: 1, retain: true });
      await pub.publishAsync("status/dev-2", "stays", { qos: 1, retain: true });
      await pub.publishAsync("expiring/a", "stale", { qos: 1 });
      await pub.publishAsync("q/kept", "fresh", { qos: 1 });
      const early = await connect(broker.url);
      const gotEarly = collect(early);
      await subscribe(early, ["short/dev-2", "status/dev-2"], 1);
      await gotEarly.waitFor(2);
      await sleep(1500);

      const late = await connect(broker.url);
      const gotLate = collect(late);
      await subscribe(late, ["short/dev-2", "status/dev-2"], 1);
      await gotLate.waitFor(1);
      assert.deepEqual(await payloadsAfterSettle(late, gotLate), ["status/dev-2=stays"], "the retained message expired");
      let got;
      ({ client: sub, got } = await connectCollecting(broker.url, session));
      await got.waitFor(1);
      assert.deepEqual(await payloadsAfterSettle(sub, got), ["q/kept=fresh"], "the queued message expired");
      await end(sub, pub, early, late);
    });
  });
}
