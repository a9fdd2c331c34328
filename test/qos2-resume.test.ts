/**
 * [MQTT-4.4.0-1] A persistent session that reconnects after it answered a
 * QoS 2 PUBLISH with PUBREC, but before PUBREL arrived, gets the PUBREL again
 * ([MQTT-3.6.1-1]: with fixed flags 0010, no DUP). The broker used to mark the
 * stored PUBREL as DUP on replay; mqtt-packet cannot write that, so the client
 * was disconnected ("packet received not valid") on every reconnect and the
 * message was never completed. Both persistence back ends.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import mqtt, { type Packet } from "mqtt";
import { startTestBroker, tempDir } from "./helpers.js";
import { rmSync } from "node:fs";

const dir = tempDir("wasmq-qos2-resume-");
after(() => rmSync(dir, { recursive: true, force: true }));

for (const persistence of ["lmdb", "memory"] as const) {
  test(`${persistence}: PUBREC sent, connection lost, reconnect: the broker resends PUBREL and the exchange completes`, async () => {
    const broker = await startTestBroker(persistence === "memory" ? { persistence: "memory" } : {}, { dataDir: `${dir}/${persistence}` });
    const url = `mqtt://127.0.0.1:${broker.port("tcp")}`;
    const sub = await mqtt.connectAsync(url, { clientId: "resume-sub", clean: false, reconnectPeriod: 0 });
    const pub = await mqtt.connectAsync(url, { clientId: "resume-pub", reconnectPeriod: 0 });
    try {
      await sub.subscribeAsync("t/q2", { qos: 2 });
      // Answer PUBREC, then drop the connection before the broker's PUBREL can arrive.
      const published = new Promise<Packet>((resolve) => sub.on("packetreceive", (p) => p.cmd === "publish" && resolve(p)));
      sub.on("packetsend", (p) => {
        if (p.cmd === "pubrec") setImmediate(() => sub.stream.destroy());
      });
      const lost = new Promise<void>((r) => sub.once("close", () => r()));
      await pub.publishAsync("t/q2", "once", { qos: 2 });
      const first = await published;
      await lost;

      const again = mqtt.connect(url, { clientId: "resume-sub", clean: false, reconnectPeriod: 0 });
      const seen: Packet[] = [];
      again.on("packetreceive", (p) => seen.push(p));
      const released = new Promise<Packet>((resolve, reject) => {
        again.on("packetreceive", (p) => p.cmd === "pubrel" && resolve(p));
        again.on("close", () => reject(new Error(`closed by the broker; received ${seen.map((p) => p.cmd).join(", ")}`)));
      });
      const pubrel = await released;
      assert.equal(pubrel.messageId, first.messageId, "PUBREL for the message that got PUBREC");
      // mqtt.js answers PUBCOMP; the session then holds nothing more for it: a fresh message flows.
      const next = new Promise<string>((resolve) => again.on("message", (_t, payload) => resolve(payload.toString())));
      await pub.publishAsync("t/q2", "next", { qos: 2 });
      assert.equal(await next, "next");
      again.removeAllListeners("close");
      await again.endAsync();
    } finally {
      await pub.endAsync().catch(() => {});
      sub.end(true);
      await broker.close();
    }
  });
}
