/**
 * kill -9 while QoS 1 deliveries to a connected persistent session are held
 * from the disk (broker/persistence/ack-gate.ts; broker/OPERATIONS.md
 * "Durability model"). The promise under test: a publisher's PUBACK means
 * every persistent subscriber either has the message on disk or has already
 * acknowledged it. So after the kill and a restart on the same data dir, every
 * message the publisher got a PUBACK for is either one the subscriber
 * acknowledged before the kill or is delivered to it again — in order, without
 * duplicates in the redelivery.
 *
 * Three points in the sequence:
 * - the subscriber never acknowledges (every held put must reach the disk
 *   before the publisher's PUBACK); the kill comes in the tick a random PUBACK
 *   reaches the publisher;
 * - it acknowledges a random first part, then stops (acknowledged deliveries
 *   were dropped unwritten; the rest must be on disk);
 * - it acknowledges everything and the broker is killed right after the
 *   subscriber's k-th PUBACK left (acknowledged or not, as the broker saw it);
 * - it acknowledges everything, each PUBACK LATE_ACK_MS after the delivery
 *   (longer than the hold): with the adaptive hold its deliveries are soon
 *   written first, and its late PUBACKs race their flushes.
 *
 * Each with `writeHold: "adaptive"` (the default, ROUNDS kills) and "fixed"
 * (one kill): the never-acknowledging and the stopping subscriber move the
 * adaptive hold from holding to writing first mid-run.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import mqtt from "mqtt";
import { durableConfig, killSpawned, startBroker } from "./broker-support.js";

const WINDOW = 32;
/** Kill points per sequence (each on a fresh data dir): one random point catches a hole only now and then. */
const ROUNDS = 3;
const base = mkdtempSync(path.join(tmpdir(), "wasmq-crash-held-"));
after(async () => {
  await killSpawned();
  rmSync(base, { recursive: true, force: true });
});

type Mode = "never-acks" | "acks-then-stops" | "killed-after-sub-puback" | "acks-late";
/** The late subscriber's delay before each PUBACK: beyond the default 5 ms hold. */
const LATE_ACK_MS = 15;

describe("kill -9 with deliveries held from the disk (LMDB, durability sync)", () => {
  for (const mode of ["never-acks", "acks-then-stops", "killed-after-sub-puback", "acks-late"] as Mode[]) {
    for (let round = 1; round <= ROUNDS + 1; round++) {
      const writeHold = round <= ROUNDS ? "adaptive" : "fixed";
      test(`every message a publisher got a PUBACK for is acknowledged by the subscriber or redelivered (${mode}, ${writeHold} hold, kill ${round})`, async (t) => {
        const config = durableConfig(base, `${mode}-${round}`, path.join(base, `${mode}-${round}`), {
          log: { level: "info" },
          limits: { maxQueuedMessages: 0 },
          writeHold,
        });
        const subAcksFirst = mode === "acks-then-stops" ? 20 + Math.floor(Math.random() * 200) : mode === "never-acks" ? 0 : Infinity;
        const killAtSubAck = mode === "killed-after-sub-puback" ? 50 + Math.floor(Math.random() * 400) : Infinity;
        const killAtPuback =
          mode === "killed-after-sub-puback" ? Infinity : (mode === "acks-late" ? 0 : subAcksFirst) + 20 + Math.floor(Math.random() * 150);
        const why = `(${mode}: subscriber acks ${subAcksFirst}, kill at publisher PUBACK ${killAtPuback} / subscriber PUBACK ${killAtSubAck})`;
        const clients: mqtt.MqttClient[] = [];
        t.after(() => {
          for (const c of clients) c.end(true);
        });

        let { broker, url } = await startBroker(config);
        let killed = false;
        let onKilled: () => void = () => {};
        const killedNow = new Promise<void>((r) => (onKilled = r));
        const kill = () => {
          if (killed) return;
          killed = true;
          broker.child.kill("SIGKILL");
          onKilled();
        };

        const subAcked = new Set<number>();
        const sub = await mqtt.connectAsync(url, {
          clientId: "held-sub",
          clean: false,
          reconnectPeriod: 0,
          // mqtt.js lets a client withhold PUBACKs only under MQTT 5; the session outlives the connection
          protocolVersion: 5,
          properties: { sessionExpiryInterval: 3600 },
          customHandleAcks: (_topic, payload, _packet, done) => {
            const n = Number(payload.toString());
            if (mode === "acks-late") {
              setTimeout(() => {
                if (killed) return;
                subAcked.add(n);
                done(0);
              }, LATE_ACK_MS);
              return;
            }
            if (subAcked.size >= subAcksFirst) return; // withheld: this client stops here
            subAcked.add(n);
            done(0);
            if (subAcked.size >= killAtSubAck) setImmediate(kill); // once the PUBACK was handed to the socket
          },
        });
        clients.push(sub);
        await sub.subscribeAsync("held/t", { qos: 1 });

        const pub = await mqtt.connectAsync(url, { clientId: "held-pub", reconnectPeriod: 0 });
        clients.push(pub);
        const acked: number[] = [];
        let next = 0;
        const send = () => {
          if (killed || next >= 5_000) return;
          const seq = next++;
          pub.publish("held/t", String(seq), { qos: 1 }, (err) => {
            if (err || killed) return;
            acked.push(seq);
            if (acked.length >= killAtPuback) return kill(); // in the tick the PUBACK arrives
            send();
          });
        };
        for (let i = 0; i < WINDOW; i++) send();
        await killedNow;
        const ackedAtKill = [...acked];
        const subAckedAtKill = new Set(subAcked);
        await broker.exited;
        pub.end(true);
        sub.end(true);
        assert.ok(ackedAtKill.length > 0, `the publisher got PUBACKs before the kill ${why}`);

        ({ broker, url } = await startBroker(config));
        const afterRestart: number[] = [];
        const sub2 = mqtt.connect(url, { clientId: "held-sub", clean: false, reconnectPeriod: 0, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 } });
        clients.push(sub2);
        sub2.on("message", (_t, payload) => afterRestart.push(Number(payload.toString())));
        await new Promise<void>((resolve, reject) => {
          sub2.once("connect", () => resolve());
          sub2.once("error", reject);
        });
        const missing = () => ackedAtKill.filter((n) => !subAckedAtKill.has(n) && !afterRestart.includes(n));
        // wait until nothing is missing, or until no message came for 5 s (the assertion then says what)
        let seen = -1;
        let quietSince = Date.now();
        while (missing().length > 0 && Date.now() - quietSince < 5_000) {
          if (afterRestart.length !== seen) {
            seen = afterRestart.length;
            quietSince = Date.now();
          }
          await new Promise((r) => setTimeout(r, 50));
        }

        const lost = missing();
        assert.deepEqual(lost.slice(0, 20), [], `${lost.length} of ${ackedAtKill.length} messages with a PUBACK were neither acknowledged by the subscriber nor redelivered ${why}`);
        for (let i = 1; i < afterRestart.length; i++) {
          assert.ok(afterRestart[i]! > afterRestart[i - 1]!, `redelivery out of order: ${afterRestart[i]} after ${afterRestart[i - 1]} ${why}`);
        }
        await broker.stop("SIGTERM");
      });
    }
  }
});
