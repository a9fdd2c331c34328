/**
 * Issue #14, loops with MQTT 3.1.1 upstreams, by protocol means first:
 * - the bridge flag (Mosquitto's try_private, 0x80 on CONNECT's protocol
 *   level) is really on the wire: read off a raw socket, so this fails loudly
 *   if a future mqtt.js stops honouring the `packetsend` hook that sets it;
 * - with the flag accepted, Mosquitto never echoes, so the topic+payload echo
 *   heuristic is off ("auto") and a reading repeated with an identical payload
 *   crosses every time (the heuristic used to drop the second one);
 * - where the upstream does echo (here: a proxy that strips the flag, so
 *   Mosquitto sees a plain client), `echoFilter: "on"` keeps the echo out and
 *   counts it in wasmq_bridge_echoes_suppressed_total.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { bridgesOf } from "../broker/bridge/index.js";
import { FAST, Mosquitto, hasMosquitto, sleep, startLoggedBroker, until } from "./bridge-support.js";
import { connectCollecting, end, subscribe, tempDir, type Received } from "./helpers.js";
import { CutProxy } from "./mqtt-cut-proxy.js";

const dir = tempDir("wasmq-bridge-flag-");
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const data = () => join(dir, `edge-${n++}`);

/** The first CONNECT a bridge sends to a listening socket (nothing is answered). */
async function firstConnect(protocolVersion: 4 | 5): Promise<Buffer> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  const bytes = new Promise<Buffer>((resolve) => server.once("connection", (s) => s.once("data", (d: Buffer) => (resolve(d), s.destroy()))));
  const edge = await startLoggedBroker({ bridges: [{ name: "cloud", url: `mqtt://127.0.0.1:${port}`, protocolVersion, ...FAST, out: [{ topic: "t/#" }] }] }, data());
  try {
    return await bytes;
  } finally {
    await edge.broker.close();
    server.close();
  }
}

/** Protocol level byte of a CONNECT frame. */
function levelOf(frame: Buffer): number {
  assert.equal(frame[0], 0x10, "a CONNECT");
  let i = 1;
  while (frame[i]! & 0x80) i++;
  assert.equal(frame.subarray(i + 1, i + 7).toString("latin1"), "\u0000\u0004MQTT");
  return frame[i + 7]!;
}

describe("bridge flag on the wire", () => {
  test("MQTT 3.1.1: CONNECT carries protocol level 0x84 (4 | 0x80, Mosquitto's try_private)", async () => {
    assert.equal(levelOf(await firstConnect(4)), 0x84);
  });

  test("MQTT 5: level 5 (no bridge bit exists) and the CONNECT user property wasmq-bridge", async () => {
    const frame = await firstConnect(5);
    assert.equal(levelOf(frame), 5);
    assert.ok(frame.includes(Buffer.from("wasmq-bridge")), "user property wasmq-bridge in CONNECT");
  });
});

type Sub = { client: MqttClient; got: { messages: Received[] } };
const copies = (s: Sub, payload: string) => s.got.messages.filter((m) => m.payload.toString() === payload).length;

describe("echoes over MQTT 3.1.1 to Mosquitto", { skip: !hasMosquitto && "mosquitto not installed" }, () => {
  async function twoWay(bridgeExtra: Record<string, unknown>, strip: boolean, top: Record<string, unknown> = {}) {
    const mdir = tempDir("wasmq-bridge-flag-mq-");
    const upstream = await Mosquitto.start(mdir);
    const proxy = await CutProxy.start(upstream.port);
    proxy.stripBridgeFlag = strip;
    const edge = await startLoggedBroker({ ...top, bridges: [{ name: "cloud", url: proxy.url, ...FAST, out: [{ topic: "t/#" }], in: [{ topic: "t/#" }], ...bridgeExtra }] }, data());
    const atEdge = await connectCollecting(edge.url, { clientId: "sub-edge" });
    const atCloud = await connectCollecting(upstream.url, { clientId: "sub-cloud" });
    await subscribe(atEdge.client, "t/#", 1);
    await subscribe(atCloud.client, "t/#", 1);
    await edge.waitLine(/bridge cloud connected/);
    // The bridge's subscription at Mosquitto may still be in flight: probe until one lands at the edge.
    for (let i = 0; copies(atEdge, "probe") === 0 && i < 400; i++) {
      await atCloud.client.publishAsync("t/probe", "probe", { qos: 1 });
      await sleep(25);
    }
    const bridge = bridgesOf(edge.broker.aedes)[0]!;
    return {
      edge,
      atEdge,
      atCloud,
      bridge,
      async close() {
        await end(atEdge.client, atCloud.client);
        await edge.broker.close();
        await proxy.close();
        await upstream.stop();
        rmSync(mdir, { recursive: true, force: true });
      },
    };
  }

  test("flag accepted (auto): a reading repeated with the same payload, once at the edge and once at the cloud, crosses both times; no echo", async () => {
    const t = await twoWay({}, false);
    try {
      assert.equal(t.bridge.echoFilterOn(), false, "the heuristic is off: Mosquitto honours the bridge flag");
      await t.atEdge.client.publishAsync("t/temp", "21.5", { qos: 1 });
      await until("edge reading at the cloud", () => copies(t.atCloud, "21.5") === 1);
      // The same reading, now taken at the cloud side: it must reach the edge (the old heuristic ate it as an "echo").
      await t.atCloud.client.publishAsync("t/temp", "21.5", { qos: 1 });
      await t.atCloud.client.publishAsync("t/temp", "end", { qos: 1 });
      await until("sentinel at the edge", () => copies(t.atEdge, "end") === 1);
      await sleep(300); // a loop would keep producing copies: give it room to show
      assert.equal(copies(t.atEdge, "21.5"), 2, "the edge has its own reading and the cloud's");
      assert.equal(copies(t.atCloud, "21.5"), 2, "the cloud has both, no echo, no loop");
      assert.equal(t.bridge.counters.echoes, 0);
    } finally {
      await t.close();
    }
  });

  test("an upstream that echoes (flag stripped on the way): echoFilter \"on\" drops the echo and counts it in the metric", async () => {
    const t = await twoWay({ echoFilter: "on", echoWindowMs: 30_000 }, true, { metrics: { port: 0 } });
    try {
      await t.atEdge.client.publishAsync("t/temp", "22.0", { qos: 1 });
      await t.atEdge.client.publishAsync("t/temp", "end", { qos: 1 });
      await until("sentinel at the cloud", () => copies(t.atCloud, "end") === 1);
      await until("the echo came back and was dropped", () => t.bridge.counters.echoes >= 2);
      await sleep(300);
      assert.equal(copies(t.atEdge, "22.0"), 1, "one copy at the edge: the echo was kept out");
      const metrics = await (await fetch(`${t.edge.broker.admin!.url}/metrics`)).text();
      assert.match(metrics, /^wasmq_bridge_echoes_suppressed_total\{bridge="cloud"\} [2-9]$/m);
    } finally {
      await t.close();
    }
  });
});
