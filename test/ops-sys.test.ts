// $SYS/broker/... topics as Mosquitto names them: retained, refreshed every
// sys.intervalSec, republished only when their value changed.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { collect, connect, end, startTestBroker, subscribe, type Received, type TestBroker } from "./helpers.js";

function latest(messages: Received[], name: string): string | undefined {
  const hits = messages.filter((m) => m.topic === `$SYS/broker/${name}`);
  return hits.at(-1)?.payload.toString();
}

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// The full set runs on LMDB (the default store); the in-memory store counts
// retained messages differently, so the first test runs on it as well.
for (const persistence of ["lmdb", "memory"] as const) {
  describe(`$SYS topics (${persistence} store)`, { timeout: 60_000 }, () => {
    let broker: TestBroker;
    before(async () => {
      broker = await startTestBroker({ persistence, sys: { intervalSec: 1 } });
    });
    after(() => broker.stop());

    test("a new subscriber gets the figures retained: version, uptime, clients, messages, bytes, retained count, load", async () => {
      const sys = await connect(broker.url);
      const got = collect(sys);
      await subscribe(sys, "$SYS/broker/#", 0);
      const counts = [
        "clients/connected",
        "clients/disconnected",
        "clients/total",
        "clients/maximum",
        "messages/received",
        "messages/sent",
        "publish/messages/received",
        "publish/messages/sent",
        "bytes/received",
        "bytes/sent",
        "retained messages/count",
        "subscriptions/count",
        "heap/current",
      ];
      const loads = ["load/messages/received/1min", "load/publish/sent/5min", "load/bytes/received/15min", "load/connections/1min"];
      const names = ["version", "uptime", ...counts, ...loads];
      // Retained figures stream in the store's order: wait for all of them.
      await until(() => names.every((n) => latest(got.messages, n) !== undefined), "every figure");
      // Once they are all out, a new subscriber gets every one of them as a retained message.
      const late = await connect(broker.url);
      const lateGot = collect(late);
      await subscribe(late, "$SYS/broker/#", 0);
      await until(() => names.every((n) => latest(lateGot.messages, n) !== undefined), "every figure, again");
      for (const name of names) assert.ok(lateGot.messages.find((m) => m.topic === `$SYS/broker/${name}`)!.retain, `${name} is retained`);
      await end(late);
      assert.match(latest(got.messages, "version")!, /^wasmq version \d+\.\d+\.\d+/);
      assert.match(latest(got.messages, "uptime")!, /^\d+ seconds$/);
      for (const name of counts) assert.match(latest(got.messages, name)!, /^\d+$/, name);
      for (const name of loads) assert.match(latest(got.messages, name)!, /^\d+\.\d\d$/, name);
      await end(sys);
    });

    if (persistence !== "lmdb") return;

    test("figures follow the broker: clients connected, messages received, retained count, persistent sessions", async () => {
      const sys = await connect(broker.url);
      const got = collect(sys);
      await subscribe(sys, "$SYS/broker/#", 0);
      await until(() => latest(got.messages, "uptime") !== undefined, "the first figures");
      const others = await Promise.all([0, 1].map((i) => connect(broker.url, { clientId: `sys-client-${i}` })));
      await until(() => latest(got.messages, "clients/connected") === "3", "3 connected clients");
      const before = Number(latest(got.messages, "publish/messages/received"));
      for (let i = 0; i < 5; i++) await others[0]!.publishAsync("sys/test", "x", { qos: 1, retain: i === 4 });
      await until(() => Number(latest(got.messages, "publish/messages/received")) >= before + 5, "5 more messages received");
      await until(() => latest(got.messages, "retained messages/count") !== undefined && got.messages.some((m) => m.topic === "$SYS/broker/retained messages/count" && !m.retain), "a fresh retained count");

      const persistent = await connect(broker.url, { clientId: "sys-persistent", clean: false });
      await subscribe(persistent, "sys/#", 1);
      await end(persistent);
      await until(() => latest(got.messages, "clients/disconnected") === "1", "one disconnected persistent session");
      await end(...others);
      await until(() => latest(got.messages, "clients/connected") === "1", "back to 1 connected client");
      assert.equal(latest(got.messages, "clients/maximum"), "4");
      await others[0]!.endAsync(true).catch(() => {});
      await end(sys);
    });

    test("only changed figures are republished: the version goes out once, the uptime every interval", async () => {
      const sys = await connect(broker.url);
      const got = collect(sys);
      await subscribe(sys, ["$SYS/broker/version", "$SYS/broker/uptime"], 0);
      await until(() => got.messages.filter((m) => m.topic === "$SYS/broker/uptime").length >= 3, "three uptime figures");
      assert.equal(got.messages.filter((m) => m.topic === "$SYS/broker/version").length, 1);
      await end(sys);
    });
  });
}
