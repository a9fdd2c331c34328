/**
 * `writeHoldMs` seen from outside, through the real CLI (broker/OPERATIONS.md
 * "Deliveries acknowledged before they are written"):
 * - with 0, a QoS 1 message to a connected persistent subscriber is on disk
 *   before it is delivered: SIGKILL the broker the moment the subscriber
 *   receives it (never acknowledging), restart, and it is delivered again;
 * - with a hold, the same kill loses it (it was held in memory, and its
 *   publisher had no PUBACK, so nothing was promised);
 * - a bad value stops the broker at start with a message naming the key and
 *   the file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import mqtt from "mqtt";
import { durableConfig, killSpawned, runCli, startBroker, writeConfig } from "./broker-support.js";

const base = mkdtempSync(path.join(tmpdir(), "wasmq-write-hold-"));
after(async () => {
  await killSpawned();
  rmSync(base, { recursive: true, force: true });
});

const SESSION = { clientId: "hold-sub", clean: false, reconnectPeriod: 0, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 3600 } };

function config(name: string, writeHoldMs: number): string {
  return durableConfig(base, name, path.join(base, name), { writeHoldMs });
}

/**
 * Deliver one QoS 1 message to a connected persistent subscriber that never
 * acknowledges it, SIGKILL the broker in the tick the subscriber gets it,
 * restart, and return what the session receives before a marker published
 * after the restart (a returning session gets its stored messages first).
 */
async function killAtDelivery(file: string): Promise<{ redelivered: string[]; pubackBeforeKill: boolean }> {
  const clients: mqtt.MqttClient[] = [];
  try {
    let { broker, url } = await startBroker(file);
    let killed!: () => void;
    const killedNow = new Promise<void>((r) => (killed = r));
    const sub = await mqtt.connectAsync(url, {
      ...SESSION,
      // mqtt.js withholds a PUBACK only under MQTT 5: never call done
      customHandleAcks: () => {
        broker.child.kill("SIGKILL");
        killed();
      },
    });
    clients.push(sub);
    await sub.subscribeAsync("hold/t", { qos: 1 });
    const pub = await mqtt.connectAsync(url, { clientId: "hold-pub", reconnectPeriod: 0 });
    clients.push(pub);
    let pubackBeforeKill = false;
    pub.publish("hold/t", "the-message", { qos: 1 }, (err) => {
      if (!err) pubackBeforeKill = true;
    });
    await killedNow;
    const ackedAtKill = pubackBeforeKill;
    await broker.exited;
    for (const c of clients.splice(0)) c.end(true);

    ({ broker, url } = await startBroker(file));
    const got: string[] = [];
    const sub2 = mqtt.connect(url, SESSION);
    clients.push(sub2);
    const marker = new Promise<void>((resolve) =>
      sub2.on("message", (_t, payload) => {
        got.push(payload.toString());
        if (payload.toString() === "marker") resolve();
      }),
    );
    await new Promise<void>((resolve, reject) => {
      sub2.once("connect", () => resolve());
      sub2.once("error", reject);
    });
    const pub2 = await mqtt.connectAsync(url, { clientId: "hold-pub-2", reconnectPeriod: 0 });
    clients.push(pub2);
    await pub2.publishAsync("hold/t", "marker", { qos: 1 });
    await marker;
    await broker.stop("SIGTERM");
    return { redelivered: got.filter((m) => m !== "marker"), pubackBeforeKill: ackedAtKill };
  } finally {
    for (const c of clients) c.end(true);
  }
}

describe("writeHoldMs through the CLI (LMDB, durability sync)", () => {
  test("0: the message is on disk before it is delivered — killed at delivery, it is delivered again after the restart", async () => {
    const { redelivered } = await killAtDelivery(config("hold-0", 0));
    assert.deepEqual(redelivered, ["the-message"]);
  });

  test("a hold (1000 ms): killed at delivery, the unacknowledged publisher's message was only in memory and is gone", async () => {
    const { redelivered, pubackBeforeKill } = await killAtDelivery(config("hold-1000", 1000));
    assert.equal(pubackBeforeKill, false, "no PUBACK went out for a held, unacknowledged, unwritten delivery");
    assert.deepEqual(redelivered, []);
  });

  test("a bad writeHoldMs stops the broker at start, naming the key and the file", async () => {
    for (const [value, why] of [
      [5000, /at most 1000 \(ms\)/],
      [-1, /0 \(write every delivery before sending it\) or more/],
      ["5", /expected number/],
      [2.5, /whole milliseconds/],
    ] as const) {
      const file = writeConfig(base, `bad-${String(value)}.json`, { port: 0, ws: false, data: path.join(base, "bad"), writeHoldMs: value });
      const run = await runCli(["--config", file]);
      assert.notEqual(run.code, 0, `refused: ${String(value)}`);
      assert.ok(run.stderr.includes(`invalid config in ${file}: key "writeHoldMs"`), `names key and file: ${run.stderr}`);
      assert.match(run.stderr, why);
      assert.ok(!run.stderr.includes("    at "), `no stack trace: ${run.stderr}`);
      assert.ok(!run.stdout.includes("wasmq ready"));
    }
  });

  test("a bad writeHold stops the broker at start, naming the key, the file and the choices", async () => {
    for (const value of ["sometimes", "", 5, true]) {
      const file = writeConfig(base, `bad-mode-${String(value)}.json`, { port: 0, ws: false, data: path.join(base, "bad"), writeHold: value });
      const run = await runCli(["--config", file]);
      assert.notEqual(run.code, 0, `refused: ${String(value)}`);
      assert.ok(run.stderr.includes(`invalid config in ${file}: key "writeHold"`), `names key and file: ${run.stderr}`);
      assert.match(run.stderr, /'adaptive' \| 'fixed'|"adaptive" \| "fixed"|adaptive.*fixed/);
      assert.ok(!run.stderr.includes("    at "), `no stack trace: ${run.stderr}`);
      assert.ok(!run.stdout.includes("wasmq ready"));
    }
  });
});
