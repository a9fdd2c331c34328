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
import { FAST, startLoggedBroker, until } from "./bridge-support.js";
import { ROOT, startTestBroker, tempDir, type TestBroker } from "./helpers.js";
import { Raw5, sleep, uid } from "./mqtt5-raw.js";
import { open } from "lmdb";
import { userPropertyList } from "../broker/protocol/mqtt5/user-properties.js";
import { close, freshDir, list, openP, pub } from "./lmdb-support.js";
import { startNode, startRedis, stopAllNodes, type Node, type RedisServer } from "./cluster-support.js";
import { connectWithWill, inOrder, WireClient, type Pairs } from "./user-property-wire.js";

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

  /** More properties than the byte check compares pairwise (64), with a name coming back at the end. */
  const MANY: Pairs = [...Array.from({ length: 70 }, (_, i) => [`n${i}`, String(i)] as [string, string]), ["n3", "again"]];
  for (const [what, pairs] of [["interleaved names", INTERLEAVED], ["array-index names", NUMERIC], ["grouped names", GROUPED], ["71 properties", MANY]] as const) {
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

  test("QoS 0 publish and subscription: the same order", async () => {
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

  test("QoS 2: the message kept in the store (LMDB) from PUBLISH to PUBREL", async () => {
    const topic = `qos2/${uid("t")}`;
    const { c: sub } = await WireClient.connect(port(broker));
    const { c: pub } = await WireClient.connect(port(broker));
    try {
      await sub.subscribe(topic, 2);
      await pub.publish(topic, INTERLEAVED, { qos: 2 });
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

const NATIVE_PROBE = join(ROOT, "dist/test/fixtures/v5probe-native.js");

describe("plugins read user properties in wire order and their edits keep a defined order (Wasm and native twin alike)", { timeout: 120_000 }, () => {
  /** What each build of the v5probe fixture logged and what subscribers received, to compare the two. */
  const seen: Record<string, unknown>[] = [];
  for (const kind of ["wasm", "native"] as const) {
    test(`v5probe (${kind}): publish, deliver and connect hooks`, async () => {
      const plugin = kind === "wasm" ? { name: "v5probe", wasm: await buildFixture("v5probe") } : { name: "v5probe", native: NATIVE_PROBE };
      const b = await startLoggedBroker({ persistence: "memory", plugins: [plugin] }, join(dir, `probe-${kind}`));
      const { c: sub, connack } = await WireClient.connect(b.broker.port("tcp")!, { properties: { userProperties: inOrder(INTERLEAVED) } });
      const { c: pub } = await WireClient.connect(b.broker.port("tcp")!);
      try {
        assert.equal(connack.reasonCode, 0);
        await sub.subscribe("v5/#");
        const got: Record<string, Pairs> = {};
        for (const topic of ["v5/plain/1", "v5/tag/1", "v5/replace/1", "v5/strip/1", "v5/deliver/1"]) {
          await pub.publish(topic, INTERLEAVED);
          got[topic] = await sub.nextOn(topic);
        }
        // reading: the plugin saw the wire order (CONNECT and PUBLISH)
        const logs = b.lines.map((l) => l.msg);
        assert.ok(logs.some((m) => /^connect v5 props=3 \[a=1\] \[b=2\] \[a=3\] /.test(m)), logs.filter((m) => m.startsWith("connect")).join("\n"));
        const published = logs.filter((m) => m.startsWith("publish v5"));
        assert.equal(published.length, 5);
        for (const m of published) assert.match(m, /^publish v5 props=3 \[a=1\] \[b=2\] \[a=3\] .* a=1\?y b=2$/);
        // editing: untouched properties keep their order, additions go last, a replaced name takes its first place
        assert.deepEqual(got, {
          "v5/plain/1": INTERLEAVED,
          "v5/tag/1": [...INTERLEAVED, ["tagged-by", "v5probe"]],
          "v5/replace/1": [["a", "replaced"], ["b", "2"]],
          "v5/strip/1": [["b", "2"]],
          "v5/deliver/1": [...INTERLEAVED, ["delivered-to", sub.clientId]],
        });
        seen.push({ logs: [...published, logs.find((m) => m.startsWith("connect v5"))!.replace(/ session=\d+$/, "")], got: { ...got, "v5/deliver/1": got["v5/deliver/1"]!.slice(0, 3) } });
      } finally {
        sub.end();
        pub.end();
        await b.broker.close();
      }
    });
  }
  test("the Wasm plugin and its native twin saw and wrote the same", () => {
    assert.equal(seen.length, 2, "both ran");
    assert.deepEqual(seen[0], seen[1]);
  });
});

describe("user properties keep their order across a two-node cluster (real redis-server)", { timeout: 120_000, skip: !hasCommand("redis-server") && "redis-server not installed" }, () => {
  let redis: RedisServer;
  let a: Node;
  let b: Node;
  before(async () => {
    redis = await startRedis();
    a = await startNode(redis, "order-a", { config: { mqtt5: { maxSessionExpiry: 3600 } } });
    b = await startNode(redis, "order-b", { config: { mqtt5: { maxSessionExpiry: 3600 } } });
  });
  after(async () => {
    await stopAllNodes();
    await redis?.stop();
  });

  test("live: published on one node, delivered on the other", async () => {
    const topic = `cluster/${uid("t")}`;
    const { c: sub } = await WireClient.connect(b.port);
    const { c: pub } = await WireClient.connect(a.port);
    try {
      await sub.subscribe(`${topic}/#`); // "#" matches its parent: the topic itself too
      // the other node learns of the subscription through Redis: probe until one arrives
      for (let i = 0; i < 200 && !sub.raw.publishes().some((p) => p.topic === `${topic}/probe`); i++) {
        await pub.publish(`${topic}/probe`, [], { qos: 0 });
        await sleep(50);
      }
      await pub.publish(topic, INTERLEAVED);
      assert.deepEqual(await sub.nextOn(topic), INTERLEAVED);
    } finally {
      sub.end();
      pub.end();
    }
  });

  test("retained and a persistent session's queue, stored in Redis by one node and read by the other", async () => {
    const retained = `cluster-kept/${uid("t")}`;
    const queued = `cluster-queued/${uid("t")}`;
    const session = { clientId: uid("roamer"), clean: false, properties: { sessionExpiryInterval: 3600 } };
    let { c: sub } = await WireClient.connect(b.port, session);
    await sub.subscribe(queued);
    sub.end();
    const { c: pub } = await WireClient.connect(a.port);
    await pub.publish(retained, INTERLEAVED, { retain: true });
    await pub.publish(queued, NUMERIC);
    pub.end();
    const back = await WireClient.connect(b.port, session);
    sub = back.c;
    try {
      assert.equal(back.connack.sessionPresent, true);
      assert.deepEqual(await sub.nextOn(queued), NUMERIC, "queued on node a, delivered by node b");
      await sub.subscribe(retained);
      assert.deepEqual(await sub.nextOn(retained), INTERLEAVED, "retained by node a, sent by node b");
    } finally {
      sub.end();
    }
  });
});

describe("user properties keep their order across a bridge (wasmq edge, v5, to a wasmq cloud)", { timeout: 120_000 }, () => {
  test("out: published at the edge, received in the cloud; in: published in the cloud, received at the edge", async () => {
    const cloud = await startLoggedBroker({ persistence: "memory" }, join(dir, "cloud"));
    const edge = await startLoggedBroker(
      { bridges: [{ name: "cloud", url: cloud.url, protocolVersion: 5, ...FAST, out: [{ topic: "up/#" }], in: [{ topic: "down/#" }] }] },
      join(dir, "edge"),
    );
    const { c: cloudClient } = await WireClient.connect(cloud.broker.port("tcp")!);
    const { c: edgeClient } = await WireClient.connect(edge.broker.port("tcp")!);
    try {
      await cloudClient.subscribe("up/#");
      await edgeClient.subscribe("down/#");
      await edge.waitLine(/bridge cloud connected/);
      await edgeClient.publish("up/1", INTERLEAVED);
      assert.deepEqual(await cloudClient.nextOn("up/1"), INTERLEAVED, "edge → cloud");
      // the bridge's subscription in the cloud may still be in flight: probe until one lands
      for (let i = 0; i < 400 && !edgeClient.raw.publishes().some((p) => p.topic === "down/probe"); i++) {
        await cloudClient.publish("down/probe", [], { qos: 0 });
        await sleep(25);
      }
      await cloudClient.publish("down/1", INTERLEAVED);
      assert.deepEqual(await edgeClient.nextOn("down/1"), INTERLEAVED, "cloud → edge");
    } finally {
      cloudClient.end();
      edgeClient.end();
      await edge.broker.close();
      await cloud.broker.close();
    }
  });
});

describe("LMDB data format 2 (ordered user properties in records)", () => {
  const setFormat = async (path: string, format: number) => {
    const root = open({ path });
    const meta = root.openDB<unknown, string>({ name: "meta" });
    const before = meta.get("format");
    if (format === 3) assert.equal(before, 2, "opening a format 1 directory marked it 2");
    await meta.put("format", format);
    const now = meta.get("format");
    await root.close();
    return now;
  };

  test("a format 1 directory is read as it is and marked 2; an unknown format is refused, naming it", async () => {
    const path = freshDir();
    let p = await openP(path);
    // a record as format 1 wrote it: user properties grouped by name
    await p.storeRetained(pub("old/1", "x", { retain: true, properties: { userProperties: { a: ["1", "3"], b: "2" } } }));
    await p.storeRetained(pub("new/1", "x", { retain: true, properties: { userProperties: inOrder(INTERLEAVED) } }));
    await close(p);
    assert.equal(await setFormat(path, 1), 1);
    p = await openP(path);
    const [old] = await list<{ properties: { userProperties: unknown } }>(p.createRetainedStream("old/1"));
    const [ordered] = await list<{ properties: { userProperties: unknown } }>(p.createRetainedStream("new/1"));
    assert.deepEqual(userPropertyList(old!.properties.userProperties), [["a", "1"], ["a", "3"], ["b", "2"]]);
    assert.deepEqual(userPropertyList(ordered!.properties.userProperties), INTERLEAVED);
    await close(p);
    assert.equal(await setFormat(path, 3), 3, "was 2 (marked at open), now 3");
    await assert.rejects(openP(path), /data format version 3 is not supported \(expected 2\)/);
  });
});
