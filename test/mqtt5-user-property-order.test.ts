// [MQTT-3.3.2-17/18] user properties are forwarded unaltered and in the order
// they were sent, on every path a message takes: live delivery, retained
// messages, a persistent session's offline queue (LMDB across a restart, and
// memory), a will, what plugins read (Wasm and its native twin alike) and
// change, across a two-node cluster on a real redis-server, and across a
// bridge. Publishers and subscribers are raw sockets whose bytes are read
// without mqtt-packet (test/user-property-wire.ts), and the Mosquitto CLI
// clients. mqtt-packet's parser groups user properties by name, so before
// this change `a=1, b=2, a=3` went out as `a=1, a=3, b=2`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildFixture } from "./fixtures.js";
import { hasCommand } from "./broker-support.js";
import { startLoggedBroker, until } from "./bridge-support.js";
import { ROOT, startTestBroker, tempDir, type TestBroker } from "./helpers.js";
import { Raw5, sleep, uid } from "./mqtt5-raw.js";
import { connectWithWill, WireClient, type Pairs } from "./user-property-wire.js";

/** A name repeated after another name: what an object keyed by name cannot keep. */
const INTERLEAVED: Pairs = [["a", "1"], ["b", "2"], ["a", "3"]];
/** Names that are array indices: objects list those first, ascending. */
const NUMERIC: Pairs = [["z", "first"], ["10", "second"], ["2", "third"]];
/** Grouped names and distinct names: mqtt-packet's object already keeps these. */
const GROUPED: Pairs = [["a", "1"], ["a", "2"], ["b", "3"], ["c", "4"]];

const port = (b: { port(kind: "tcp"): number | undefined }) => b.port("tcp")!;
const dir = tempDir("wasmq-v5order-");
after(() => rmSync(dir, { recursive: true, force: true }));

describe("user properties keep their order on one broker", { timeout: 60_000 }, () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startTestBroker({ mqtt5: { maxSessionExpiry: 3600 } });
  });
  after(async () => broker?.stop());

  for (const [what, pairs] of [["interleaved names", INTERLEAVED], ["array-index names", NUMERIC], ["grouped names", GROUPED]] as const) {
    test(`live delivery, ${what} [MQTT-3.3.2-18]`, async () => {
      const topic = `live/${uid("t")}`;
      const { c: sub } = await WireClient.connect(port(broker));
      const { c: pub } = await WireClient.connect(port(broker));
      try {
        await sub.subscribe(topic);
        await pub.publish(topic, pairs);
        assert.deepEqual(await sub.nextOn(topic), pairs);
      } finally {
        sub.end();
        pub.end();
      }
    });
  }

  test("QoS 0 and a 3.1.1-style subscriber at QoS 0 get the same order", async () => {
    const topic = `live0/${uid("t")}`;
    const { c: sub } = await WireClient.connect(port(broker));
    const { c: pub } = await WireClient.connect(port(broker));
    try {
      await sub.subscribe(topic, 0);
      await pub.publish(topic, INTERLEAVED, { qos: 0 });
      assert.deepEqual(await sub.nextOn(topic), INTERLEAVED);
    } finally {
      sub.end();
      pub.end();
    }
  });

  test("a will's user properties keep their order in the will PUBLISH [MQTT-3.1.3-10]", async () => {
    const willTopic = `will/${uid("t")}`;
    const { c: sub } = await WireClient.connect(port(broker));
    try {
      await sub.subscribe(willTopic);
      const dying = await Raw5.open(port(broker));
      dying.sendRaw(connectWithWill(uid("dying"), willTopic, INTERLEAVED));
      await dying.next("connack");
      dying.destroy(); // no DISCONNECT: the will is published
      assert.deepEqual(await sub.nextOn(willTopic), INTERLEAVED);
    } finally {
      sub.end();
    }
  });

  test("Mosquitto clients: mosquitto_pub -D user-property in, mosquitto_sub -F %P out", { skip: !hasCommand("mosquitto_sub") && "mosquitto clients not installed" }, async () => {
    const topic = `mosq/${uid("t")}`;
    const sub = spawn("mosquitto_sub", ["-V", "mqttv5", "-p", String(port(broker)), "-h", "127.0.0.1", "-t", topic, "-C", "1", "-W", "20", "-F", "%P"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    sub.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    const exited = new Promise<number | null>((resolve) => sub.once("exit", resolve));
    try {
      await until("mosquitto_sub subscribed", () => Object.values((broker.aedes as unknown as { clients: Record<string, { subscriptions: Record<string, unknown> }> }).clients).some((c) => topic in (c.subscriptions ?? {})), 20_000);
      const props = INTERLEAVED.flatMap(([k, v]) => ["-D", "publish", "user-property", k, v]);
      const pub = spawn("mosquitto_pub", ["-V", "mqttv5", "-p", String(port(broker)), "-h", "127.0.0.1", "-t", topic, "-m", "x", "-q", "1", ...props], { stdio: "ignore" });
      assert.equal(await new Promise((resolve) => pub.once("exit", resolve)), 0, "mosquitto_pub succeeded");
      assert.equal(await exited, 0, "mosquitto_sub received a message");
      assert.equal(out.trim(), INTERLEAVED.map(([k, v]) => `${k}:${v}`).join(" "));
    } finally {
      sub.kill();
    }
  });
});

describe("user properties keep their order in stored messages", { timeout: 60_000 }, () => {
  test("retained, read back from LMDB after a restart", async () => {
    const dataDir = join(dir, "retained");
    const topic = `kept/${uid("t")}`;
    let broker = await startTestBroker({}, { dataDir });
    try {
      const { c: pub } = await WireClient.connect(port(broker));
      await pub.publish(topic, INTERLEAVED, { retain: true });
      pub.end();
      // before the restart: read from the store as a SUBSCRIBE's retained message
      let { c: sub } = await WireClient.connect(port(broker));
      await sub.subscribe(topic);
      assert.deepEqual(await sub.nextOn(topic), INTERLEAVED);
      sub.end();
      await broker.stop();
      broker = await startTestBroker({}, { dataDir });
      ({ c: sub } = await WireClient.connect(port(broker)));
      await sub.subscribe(topic);
      assert.deepEqual(await sub.nextOn(topic), INTERLEAVED, "after a restart");
      sub.end();
    } finally {
      await broker.stop();
    }
  });

  for (const persistence of ["lmdb", "memory"] as const) {
    test(`a persistent session's offline queue (${persistence}${persistence === "lmdb" ? ", across a restart" : ""})`, async () => {
      const dataDir = join(dir, `queue-${persistence}`);
      const raw = persistence === "memory" ? { persistence: "memory" as const, mqtt5: { maxSessionExpiry: 3600 } } : { mqtt5: { maxSessionExpiry: 3600 } };
      const topic = `queued/${uid("t")}`;
      const clientId = uid("away");
      const session = { clientId, clean: false, properties: { sessionExpiryInterval: 3600 } };
      let broker = await startTestBroker(raw, { dataDir });
      try {
        let { c: sub } = await WireClient.connect(port(broker), session);
        await sub.subscribe(topic);
        sub.end();
        await until("session away", () => !(clientId in (broker.aedes as unknown as { clients: Record<string, unknown> }).clients), 10_000);
        const { c: pub } = await WireClient.connect(port(broker));
        await pub.publish(topic, INTERLEAVED);
        await pub.publish(topic, NUMERIC);
        pub.end();
        if (persistence === "lmdb") {
          await broker.stop();
          broker = await startTestBroker(raw, { dataDir });
        }
        const back = await WireClient.connect(port(broker), session);
        sub = back.c;
        assert.equal(back.connack.sessionPresent, true);
        assert.deepEqual(await sub.nextOn(topic), INTERLEAVED);
        assert.deepEqual(await sub.nextOn(topic), NUMERIC);
        sub.end();
      } finally {
        await broker.stop();
      }
    });
  }
});

void ROOT;
void sleep;
