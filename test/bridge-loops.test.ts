/**
 * Issue #14, loops: a message that arrived over a bridge never goes back over
 * it, and two-way bridges (between two wasmq brokers, and to Mosquitto over
 * MQTT 3.1.1 and 5) deliver every message exactly once on each side.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { bridgesOf } from "../broker/bridge/index.js";
import { FAST, sleep, startLoggedBroker, until, upstreamKinds } from "./bridge-support.js";
import { connectCollecting, end, freePort, subscribe, tempDir, type Received } from "./helpers.js";

const dir = tempDir("wasmq-bridge-loops-");
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const data = () => join(dir, `b-${n++}`);

type Sub = { client: MqttClient; got: { messages: Received[] } };
const copies = (s: Sub, payload: string) => s.got.messages.filter((m) => m.payload.toString() === payload).length;

/** Publish `payload` on `topic` at `pub`, then a sentinel, and wait until both subscribers saw the sentinel. */
async function roundTrip(pub: MqttClient, topic: string, payload: string, subs: Sub[]): Promise<void> {
  await pub.publishAsync(topic, payload, { qos: 1 });
  const sentinel = `${payload}-end`;
  await pub.publishAsync(topic, sentinel, { qos: 1 });
  await until(`${sentinel} everywhere`, () => subs.every((s) => copies(s, sentinel) >= 1));
  // A loop would keep producing copies: give it room to show.
  await sleep(300);
}

/** Wait until a bridge's remote subscription is live: probe from the remote side until a copy comes through. */
async function probe(remote: MqttClient, topic: string, local: Sub): Promise<void> {
  for (let i = 0; copies(local, "probe") === 0 && i < 400; i++) {
    await remote.publishAsync(topic, "probe", { qos: 1 });
    await sleep(25);
  }
}

const UPSTREAMS = upstreamKinds(dir);

describe("two-way bridges do not loop", () => {
  for (const [kind, startUpstream, available] of UPSTREAMS) {
    for (const protocolVersion of [4, 5] as const) {
      test(`to ${kind} over MQTT ${protocolVersion === 5 ? "5 (no-local)" : "3.1.1 (bridge flag)"}, one bridge carrying t/# both ways: one copy on each side, nothing sent back`, { skip: !available && `${kind} not installed` }, async () => {
        const upstream = await startUpstream();
        const edge = await startLoggedBroker(
          { bridges: [{ name: "cloud", url: upstream.url, protocolVersion, ...FAST, out: [{ topic: "t/#" }], in: [{ topic: "t/#" }] }] },
          data(),
        );
        const subA = await connectCollecting(edge.url, { clientId: "sub-edge" });
        const subB = await connectCollecting(upstream.url, { clientId: "sub-cloud" });
        try {
          await subscribe(subA.client, "t/#", 1);
          await subscribe(subB.client, "t/#", 1);
          await edge.waitLine(/bridge cloud connected/);
          await probe(subB.client, "t/probe", subA);
          await roundTrip(subA.client, "t/a", "fromEdge", [subA, subB]);
          await roundTrip(subB.client, "t/b", "fromCloud", [subA, subB]);
          for (const p of ["fromEdge", "fromCloud"]) {
            assert.equal(copies(subA, p), 1, `${p} at the edge`);
            assert.equal(copies(subB, p), 1, `${p} at ${kind}`);
          }
          // Only the edge's own messages went up: fromEdge and its sentinel.
          assert.equal(bridgesOf(edge.broker.aedes)[0]!.counters.forwarded, 2);
        } finally {
          await end(subA.client, subB.client);
          await edge.broker.close();
          await upstream.stop();
        }
      });
    }
  }

  type Started = Awaited<ReturnType<typeof startLoggedBroker>>;
  /**
   * Two brokers bridged to each other: each needs the other's port before it
   * starts, so both are picked free first. Another process may take a picked
   * port before its broker listens (the ephemeral range is shared with client
   * sockets): then both are closed and the pair is started again on new ports.
   */
  async function startBridgedPair(protocolVersion: 4 | 5): Promise<[Started, Started]> {
    for (let attempt = 1; ; attempt++) {
      const portA = await freePort();
      const portB = await freePort();
      const started = await Promise.allSettled([
        startLoggedBroker({ port: portA, bridges: [{ name: "toB", url: `mqtt://127.0.0.1:${portB}`, protocolVersion, ...FAST, out: [{ topic: "t/#" }] }] }, data()),
        startLoggedBroker({ port: portB, bridges: [{ name: "toA", url: `mqtt://127.0.0.1:${portA}`, protocolVersion, ...FAST, out: [{ topic: "t/#" }] }] }, data()),
      ]);
      if (started[0].status === "fulfilled" && started[1].status === "fulfilled") return [started[0].value, started[1].value];
      // a broker that did start must not be left running (its bridge would keep the test process alive)
      for (const s of started) if (s.status === "fulfilled") await s.value.broker.close();
      const failure = started.find((s): s is PromiseRejectedResult => s.status === "rejected")!.reason as Error;
      if (!/already in use/.test(failure.message) || attempt === 5) throw failure;
    }
  }

  for (const protocolVersion of [4, 5] as const) {
    test(`wasmq ↔ wasmq over MQTT ${protocolVersion === 5 ? "5" : "3.1.1"}, a bridge on each side (A→B and B→A for t/#): one hop, no loop`, async () => {
      const [a, b] = await startBridgedPair(protocolVersion);
      const subA = await connectCollecting(a.url, { clientId: "sub-a" });
      const subB = await connectCollecting(b.url, { clientId: "sub-b" });
      try {
        await subscribe(subA.client, "t/#", 1);
        await subscribe(subB.client, "t/#", 1);
        await a.waitLine(/bridge toB connected/);
        await b.waitLine(/bridge toA connected/);
        await roundTrip(subA.client, "t/a", "fromA", [subA, subB]);
        await roundTrip(subB.client, "t/b", "fromB", [subA, subB]);
        for (const p of ["fromA", "fromB"]) {
          assert.equal(copies(subA, p), 1, `${p} at A`);
          assert.equal(copies(subB, p), 1, `${p} at B`);
        }
        assert.equal(bridgesOf(a.broker.aedes)[0]!.counters.forwarded, 2);
        assert.equal(bridgesOf(b.broker.aedes)[0]!.counters.forwarded, 2);
      } finally {
        await end(subA.client, subB.client);
        await a.broker.close();
        await b.broker.close();
      }
    });
  }
});
