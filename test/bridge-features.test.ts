/**
 * Issue #14: queue limits under both policies, failover between upstream URLs,
 * TLS to the upstream, inbound commands, plugins deciding what crosses. The
 * upstream is a real Mosquitto; the edge an in-process wasmq with LMDB.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { bridgesOf } from "../broker/bridge/index.js";
import { makeSelfSignedCert } from "./broker-support.js";
import { FAST, Mosquitto, Tally, hasMosquitto, publishAll, startLoggedBroker, until } from "./bridge-support.js";
import { connectCollecting, end, freePort, native, subscribe, tempDir, type Received } from "./helpers.js";

const dir = tempDir("wasmq-bridge-features-");
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const data = () => join(dir, `edge-${n++}`);

describe("bridge features against Mosquitto", { skip: !hasMosquitto && "mosquitto not installed" }, () => {
  for (const onFull of ["drop-new", "drop-oldest"] as const) {
    test(`full queue, ${onFull}: the policy, a metric, a log line; drains once the upstream is back and keeps forwarding`, async () => {
      const mdir = tempDir("wasmq-bridge-mq-");
      // A persistent subscriber at the upstream, made before the upstream goes away.
      const upstream = await Mosquitto.start(mdir);
      const tally = await Tally.start(upstream.url, "site1/#");
      await upstream.stop();
      const edge = await startLoggedBroker(
        { bridges: [{ name: "cloud", url: upstream.url, ...FAST, maxMessages: 10, onFull, out: [{ topic: "sensors/#", remotePrefix: "site1/" }] }] },
        data(),
      );
      try {
        await publishAll(edge.url, 25, () => "sensors/a", "q");
        const [bridge] = bridgesOf(edge.broker.aedes);
        assert.equal(bridge!.queue.depth, 10);
        assert.equal(bridge!.counters.dropped[onFull], 15);
        const line = await edge.waitLine(/queue full/);
        assert.equal(line.onFull, onFull);
        await upstream.start();
        await tally.waitDistinct(10);
        const kept = onFull === "drop-new" ? [0, 9] : [15, 24];
        for (let i = kept[0]!; i <= kept[1]!; i++) assert.ok(tally.counts.has(`q${i}`), `q${i} kept by ${onFull}`);
        assert.equal(tally.distinct, 10);
        // Room again: new traffic crosses (the bridge never wedges, mosquitto#2256).
        await until("queue drained", () => bridge!.queue.depth === 0);
        await publishAll(edge.url, 5, () => "sensors/a", "after");
        await tally.waitDistinct(15);
        await edge.waitLine(/queue has room again/);
        assert.equal(bridge!.counters.dropped[onFull], 15);
      } finally {
        await edge.broker.close();
        await tally.end();
        await upstream.stop();
        rmSync(mdir, { recursive: true, force: true });
      }
    });
  }

  test("MQTT 5: the drain keeps to the upstream's Receive Maximum (Mosquitto max_inflight_messages 5), so no QoS 2 message is refused", async () => {
    const mdir = tempDir("wasmq-bridge-mq-");
    const upstream = await Mosquitto.start(mdir, ["max_inflight_messages 5"]);
    const tally = await Tally.start(upstream.url, "site1/#");
    const edge = await startLoggedBroker(
      { bridges: [{ name: "cloud", url: upstream.url, protocolVersion: 5, inflight: 200, ...FAST, out: [{ topic: "sensors/#", qos: 2, remotePrefix: "site1/" }] }] },
      data(),
    );
    try {
      await edge.waitLine(/bridge cloud connected/);
      const bridge = bridgesOf(edge.broker.aedes)[0]!;
      assert.equal(bridge.sendWindow, 5);
      await publishAll(edge.url, 200, (i) => `sensors/${i % 4}`, "rm", 0, 2);
      await tally.waitDistinct(200);
      await until("queue drained", () => bridge.queue.depth === 0);
      assert.equal(bridge.counters.dropped.rejected, 0);
      assert.equal(bridge.counters.forwarded, 200);
    } finally {
      await edge.broker.close();
      await tally.end();
      await upstream.stop();
      rmSync(mdir, { recursive: true, force: true });
    }
  });

  test("failover between two upstream URLs: the second takes over when the first goes away, nothing lost", async () => {
    const mdir = tempDir("wasmq-bridge-mq-");
    const a = await Mosquitto.start(mdir);
    const b = await Mosquitto.start(mdir);
    const tallyA = await Tally.start(a.url, "site1/#");
    const tallyB = await Tally.start(b.url, "site1/#");
    const edge = await startLoggedBroker({ bridges: [{ name: "cloud", urls: [a.url, b.url], ...FAST, out: [{ topic: "sensors/#", remotePrefix: "site1/" }] }] }, data());
    try {
      await edge.waitLine(new RegExp(`connected to ${a.url}`));
      await publishAll(edge.url, 20, () => "sensors/a", "f");
      await tallyA.waitDistinct(20);
      await a.stop();
      await publishAll(edge.url, 20, () => "sensors/a", "f", 20);
      await edge.waitLine(new RegExp(`connected to ${b.url}`));
      await tallyB.waitDistinct(20);
      for (let i = 20; i < 40; i++) assert.ok(tallyB.counts.has(`f${i}`), `f${i} reached the second upstream`);
      assert.equal(bridgesOf(edge.broker.aedes)[0]!.upstream.url, b.url);
    } finally {
      await edge.broker.close();
      await tallyA.end();
      await tallyB.end();
      await a.stop();
      await b.stop();
      rmSync(mdir, { recursive: true, force: true });
    }
  });

  test("TLS to the upstream: mqtts with the CA verifies and forwards; without the CA the connection is refused", async () => {
    const mdir = tempDir("wasmq-bridge-tls-");
    const cert = makeSelfSignedCert(mdir);
    const tlsPort = await freePort();
    const upstream = await Mosquitto.start(mdir, [`listener ${tlsPort} 127.0.0.1`, `certfile ${cert.certFile}`, `keyfile ${cert.keyFile}`], tlsPort);
    const tally = await Tally.start(`mqtts://localhost:${tlsPort}`, "site1/#", { ca: cert.cert });
    const good = await startLoggedBroker(
      { bridges: [{ name: "cloud", url: `mqtts://localhost:${tlsPort}`, tls: { ca: cert.certFile }, ...FAST, out: [{ topic: "sensors/#", remotePrefix: "site1/" }] }] },
      data(),
    );
    const bad = await startLoggedBroker({ bridges: [{ name: "cloud", url: `mqtts://localhost:${tlsPort}`, ...FAST, out: [{ topic: "sensors/#" }] }] }, data());
    try {
      await good.waitLine(/bridge cloud connected/);
      await publishAll(good.url, 10, () => "sensors/a", "tls");
      await tally.waitDistinct(10);
      const refused = await bad.waitLine(/cannot connect/);
      assert.match(String(refused.reason), /self.signed|certificate/i);
      assert.equal(bridgesOf(bad.broker.aedes)[0]!.connected, false);
    } finally {
      await good.broker.close();
      await bad.broker.close();
      await tally.end();
      await upstream.stop();
      rmSync(mdir, { recursive: true, force: true });
    }
  });

  test("inbound commands reach edge subscribers, online and offline persistent ones, with prefixes mapped", async () => {
    const mdir = tempDir("wasmq-bridge-mq-");
    const upstream = await Mosquitto.start(mdir);
    const edge = await startLoggedBroker(
      { bridges: [{ name: "cloud", url: upstream.url, ...FAST, in: [{ topic: "commands/#", qos: 1, remotePrefix: "site1/", localPrefix: "local/" }] }] },
      data(),
    );
    const live = await connectCollecting(edge.url, { clientId: "live-sub" });
    const offline = await connectCollecting(edge.url, { clientId: "offline-sub", clean: false });
    const cloud = await connectCollecting(upstream.url, { clientId: "cloud-app" });
    try {
      await subscribe(live.client, "local/commands/#", 1);
      await subscribe(offline.client, "local/commands/#", 1);
      await end(offline.client);
      await edge.waitLine(/bridge cloud connected/);
      await until("upstream subscription", () => bridgesOf(edge.broker.aedes)[0]!.connected);
      // The bridge's SUBSCRIBE may still be in flight: publish probes until the first copy lands.
      // Probes published meanwhile may still arrive after it, among the commands: they are
      // told apart by topic, and the waits below are for the last command, not for a count.
      for (let i = 0; live.got.messages.length === 0 && i < 200; i++) {
        await cloud.client.publishAsync("site1/commands/probe", "probe", { qos: 1 });
        await new Promise((r) => setTimeout(r, 50));
      }
      await cloud.client.publishAsync("site1/commands/reboot", "now", { qos: 1 });
      await cloud.client.publishAsync("elsewhere/commands/reboot", "not for us", { qos: 1 });
      await cloud.client.publishAsync("site1/commands/update", "v2", { qos: 1 });
      const commands = (got: Received[]) => got.filter((m) => m.topic !== "local/commands/probe").map((m) => [m.topic, m.payload.toString()]);
      const expected = [
        ["local/commands/reboot", "now"],
        ["local/commands/update", "v2"],
      ];
      // One subscription, QoS 1: the commands arrive in the order they were published, so once
      // the last is here, anything "elsewhere/" let through would be here too.
      const lastArrived = (got: Received[]) => got.some((m) => m.topic === "local/commands/update");
      await until("the update command at the live subscriber", () => lastArrived(live.got.messages));
      assert.deepEqual(commands(live.got.messages), expected);
      const back = await connectCollecting(edge.url, { clientId: "offline-sub", clean: false });
      await until("the update command queued for the offline subscriber", () => lastArrived(back.got.messages));
      assert.deepEqual(commands(back.got.messages), expected);
      assert.ok(bridgesOf(edge.broker.aedes)[0]!.counters.received >= 3);
      await end(back.client);
    } finally {
      await end(live.client, cloud.client);
      await edge.broker.close();
      await upstream.stop();
      rmSync(mdir, { recursive: true, force: true });
    }
  });

  test("plugins decide what crosses: an acl plugin denies $bridge/cloud some topics, out and in", async () => {
    const mdir = tempDir("wasmq-bridge-mq-");
    const upstream = await Mosquitto.start(mdir);
    const tally = await Tally.start(upstream.url, "site1/#");
    const edge = await startLoggedBroker(
      {
        plugins: [
          {
            name: "acl",
            native: native("acl"),
            config: {
              default: "allow",
              rules: [
                { clientId: "$bridge/cloud", topic: "sensors/private/#", access: "deny" },
                { clientId: "$bridge/cloud", topic: "commands/dangerous/#", access: "deny" },
              ],
            },
          },
        ],
        bridges: [
          {
            name: "cloud",
            url: upstream.url,
            ...FAST,
            out: [{ topic: "sensors/#", remotePrefix: "site1/" }],
            in: [{ topic: "commands/#", remotePrefix: "site1/" }],
          },
        ],
      },
      data(),
    );
    const local = await connectCollecting(edge.url, { clientId: "edge-app" });
    const cloud = await connectCollecting(upstream.url, { clientId: "cloud-app2" });
    try {
      await subscribe(local.client, ["sensors/#", "commands/#"], 1);
      await edge.waitLine(/bridge cloud connected/);
      await publishAll(edge.url, 5, (i) => (i % 2 ? "sensors/private/x" : "sensors/public/x"), "p");
      await tally.waitDistinct(3);
      // Everything reached the local subscriber; only public readings crossed.
      await local.got.waitFor(5);
      const bridge = bridgesOf(edge.broker.aedes)[0]!;
      await until("filtered out", () => bridge.counters.filtered.out === 2);
      await until("queue empty", () => bridge.queue.depth === 0);
      assert.deepEqual([...tally.counts.keys()].sort(), ["p0", "p2", "p4"]);

      for (let i = 0; !local.got.messages.some((m) => m.topic === "commands/ok") && i < 200; i++) {
        await cloud.client.publishAsync("site1/commands/ok", "ok", { qos: 1 });
        await new Promise((r) => setTimeout(r, 50));
      }
      await cloud.client.publishAsync("site1/commands/dangerous/wipe", "x", { qos: 1 });
      await cloud.client.publishAsync("site1/commands/ok", "last", { qos: 1 });
      await until("last command", () => local.got.messages.some((m) => m.payload.toString() === "last"));
      assert.ok(!local.got.messages.some((m) => m.topic.startsWith("commands/dangerous")), "denied command never published locally");
      assert.equal(bridge.counters.filtered.in, 1);
    } finally {
      await end(local.client, cloud.client);
      await edge.broker.close();
      await tally.end();
      await upstream.stop();
      rmSync(mdir, { recursive: true, force: true });
    }
  });
});

describe("bridge transports and credentials (wasmq upstream)", () => {
  test("ws:// with username/password to an upstream running the auth plugin; a wrong password is refused and retried, nothing queued is lost", async () => {
    const { hashPassword } = (await import(native("auth"))) as { hashPassword(p: string, iterations?: number): string };
    const auth = { name: "auth", native: native("auth"), config: { users: [{ username: "edge", hash: hashPassword("edge-pw", 1000) }] } };
    const cloud = await startLoggedBroker({ ws: { port: 0 }, plugins: [auth] }, data());
    const wsUrl = `ws://127.0.0.1:${cloud.broker.port("ws")}/mqtt`;
    const good = await startLoggedBroker({ bridges: [{ name: "cloud", url: wsUrl, username: "edge", password: "edge-pw", ...FAST, out: [{ topic: "sensors/#", remotePrefix: "site1/" }] }] }, data());
    const bad = await startLoggedBroker({ bridges: [{ name: "cloud", url: wsUrl, username: "edge", password: "wrong", ...FAST, out: [{ topic: "sensors/#" }] }] }, data());
    const watcher = await connectCollecting(cloud.url, { clientId: "watcher", username: "edge", password: "edge-pw" });
    try {
      await subscribe(watcher.client, "site1/#", 1);
      await good.waitLine(/bridge cloud connected to ws:/);
      await publishAll(good.url, 10, () => "sensors/a", "ws");
      await watcher.got.waitFor(10);
      assert.deepEqual(
        watcher.got.messages.map((m) => m.payload.toString()),
        Array.from({ length: 10 }, (_, i) => `ws${i}`),
      );
      await publishAll(bad.url, 3, () => "sensors/a", "held");
      const refused = await bad.waitLine(/cannot connect/);
      assert.match(String(refused.reason), /Bad username or password|bad user name or password/i);
      const held = bridgesOf(bad.broker.aedes)[0]!;
      assert.equal(held.connected, false);
      assert.equal(held.queue.depth, 3);
    } finally {
      await end(watcher.client);
      await good.broker.close();
      await bad.broker.close();
      await cloud.broker.close();
    }
  });
});
