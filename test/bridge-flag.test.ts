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
 *   counts it in wasmq_bridge_echoes_suppressed_total;
 * - an upstream that refuses the flag (a 3.1.1 broker that answers CONNACK 1,
 *   "unacceptable protocol version", to level 0x84: here the proxy does, with
 *   a real Mosquitto behind it) gets a retry without it, and "auto" turns the
 *   echo heuristic on: messages cross both ways, echoes are dropped and
 *   counted, nothing loops.
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
async function firstConnect(protocolVersion: 4 | 5, extra: Record<string, unknown> = {}): Promise<Buffer> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  const bytes = new Promise<Buffer>((resolve) => server.once("connection", (s) => s.once("data", (d: Buffer) => (resolve(d), s.destroy()))));
  const edge = await startLoggedBroker({ bridges: [{ name: "cloud", url: `mqtt://127.0.0.1:${port}`, protocolVersion, ...FAST, ...extra, out: [{ topic: "t/#" }] }] }, data());
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

  test("MQTT 3.1.1 with bridgeFlag: false (an upstream that closes the connection on 0x84, e.g. AWS IoT): plain level 4", async () => {
    assert.equal(levelOf(await firstConnect(4, { bridgeFlag: false })), 4);
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
  /** proxyMode: "strip" clears the flag on the way up (the upstream echoes), "refuse" answers a flagged CONNECT with CONNACK 1. */
  async function twoWay(bridgeExtra: Record<string, unknown>, proxyMode: "pass" | "strip" | "refuse", top: Record<string, unknown> = {}) {
    const mdir = tempDir("wasmq-bridge-flag-mq-");
    const upstream = await Mosquitto.start(mdir);
    const proxy = await CutProxy.start(upstream.port);
    proxy.stripBridgeFlag = proxyMode === "strip";
    proxy.refuseBridgeFlag = proxyMode === "refuse";
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
      proxy,
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
    const t = await twoWay({}, "pass");
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
    const t = await twoWay({ echoFilter: "on", echoWindowMs: 30_000 }, "strip", { metrics: { port: 0 } });
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

  test("an upstream that refuses the flag (CONNACK 1 to level 0x84): the bridge reconnects without it, \"auto\" turns the echo filter on, messages cross both ways once, echoes are counted", async () => {
    const t = await twoWay({ echoWindowMs: 30_000 }, "refuse", { metrics: { port: 0 } });
    try {
      assert.ok(t.proxy.refusedBridgeConnects >= 1, "the flagged CONNECT was refused");
      await t.edge.waitLine(/remote refused the bridge flag/);
      assert.equal(t.bridge.upstream.bridgeFlag, false, "the retry went without the flag");
      assert.equal(t.bridge.echoFilterOn(), true, "auto: the heuristic is on, the upstream will echo");
      // Edge → cloud: Mosquitto sends the bridge its own message back (a plain client, no no-local in 3.1.1); the filter keeps it out.
      await t.atEdge.client.publishAsync("t/temp", "e1", { qos: 1 });
      // Cloud → edge: crosses once and does not go back up.
      await t.atCloud.client.publishAsync("t/temp", "c1", { qos: 1 });
      await t.atEdge.client.publishAsync("t/temp", "end-edge", { qos: 1 });
      await t.atCloud.client.publishAsync("t/temp", "end-cloud", { qos: 1 });
      await until("sentinels crossed", () => copies(t.atCloud, "end-edge") === 1 && copies(t.atEdge, "end-cloud") === 1);
      await until("the echoes came back and were dropped", () => t.bridge.counters.echoes >= 2);
      await sleep(500); // a loop would keep producing copies: give it room to show
      for (const p of ["e1", "c1", "end-edge", "end-cloud"]) {
        assert.equal(copies(t.atEdge, p), 1, `${p}: one copy at the edge`);
        assert.equal(copies(t.atCloud, p), 1, `${p}: one copy at the cloud`);
      }
      const status = (await (await fetch(`${t.edge.broker.admin!.url}/bridges/cloud`)).json()) as { bridgeFlag: boolean; echoFilter: { mode: string; active: boolean }; echoesSuppressed: number };
      assert.deepEqual([status.bridgeFlag, status.echoFilter.mode, status.echoFilter.active], [false, "auto", true]);
      assert.ok(status.echoesSuppressed >= 2);
      const metrics = await (await fetch(`${t.edge.broker.admin!.url}/metrics`)).text();
      assert.match(metrics, /^wasmq_bridge_echoes_suppressed_total\{bridge="cloud"\} ([2-9]|\d\d+)$/m);
      assert.ok(t.proxy.seen.toUpstream.connect! >= 2, "one refused CONNECT, then the one without the flag");
    } finally {
      await t.close();
    }
  });
});
