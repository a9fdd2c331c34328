/**
 * Mosquitto's bridge notifications (`notifications: true`): the upstream
 * learns whether the edge is connected. The bridge publishes a retained "1"
 * to `$SYS/broker/connection/<clientId>/state` at the upstream on connect,
 * registers a retained "0" there as its will (a kill -9 of the edge), and
 * publishes "0" itself on a clean stop (DISCONNECT suppresses the will).
 * The upstream is a real Mosquitto, the edge a CLI child so it can be kill -9'd.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { writeConfig } from "./broker-support.js";
import { Edge, FAST, Mosquitto, hasMosquitto, until } from "./bridge-support.js";
import { connectCollecting, end, subscribe, tempDir } from "./helpers.js";

const dir = tempDir("wasmq-bridge-notify-");
after(() => rmSync(dir, { recursive: true, force: true }));

describe("bridge notifications at a Mosquitto upstream", { skip: !hasMosquitto && "mosquitto not installed" }, () => {
  test("retained 1 on connect, 0 by the will after kill -9, 1 again after the restart, 0 on a clean stop", async () => {
    const upstream = await Mosquitto.start(tempDir("wasmq-bridge-notify-mq-"));
    const config = writeConfig(dir, "edge.json", {
      host: "127.0.0.1",
      port: 0,
      ws: false,
      data: join(dir, "edge-data"),
      sys: false,
      log: { level: "info" },
      bridges: [{ name: "cloud", url: upstream.url, clientId: "edge-site1", notifications: true, ...FAST, out: [{ topic: "sensors/#" }] }],
    });
    const edge = new Edge(config);
    const watcher = await connectCollecting(upstream.url, { clientId: "watcher" });
    const states = () => watcher.got.messages.filter((m) => m.topic === "$SYS/broker/connection/edge-site1/state").map((m) => m.payload.toString());
    try {
      await subscribe(watcher.client, "$SYS/broker/connection/+/state", 1);
      await edge.start();
      await until("state 1 after connect", () => states().at(-1) === "1");
      await edge.kill9();
      await until("state 0 from the will after kill -9", () => states().at(-1) === "0");
      await edge.start();
      await until("state 1 after the restart", () => states().length >= 3 && states().at(-1) === "1");
      await edge.stop();
      await until("state 0 after a clean stop", () => states().length >= 4 && states().at(-1) === "0");
      assert.deepEqual(states(), ["1", "0", "1", "0"]);
      // Retained: a monitor that subscribes later learns the current state.
      const late = await connectCollecting(upstream.url, { clientId: "late" });
      await subscribe(late.client, "$SYS/broker/connection/edge-site1/state", 1);
      await until("retained state for a late subscriber", () => late.got.messages.length > 0);
      assert.equal(late.got.messages[0]!.payload.toString(), "0");
      assert.equal(late.got.messages[0]!.retain, true);
      await end(late.client);
    } finally {
      await end(watcher.client);
      await edge.stop();
      await upstream.stop();
      rmSync(upstream.dir, { recursive: true, force: true });
    }
  });
});
