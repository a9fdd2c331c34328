/**
 * Issue #14: MQTT 5 properties cross a bridge that speaks v5 to its upstream,
 * both ways — user properties (in order), content type, payload format
 * indicator, response topic, correlation data, message expiry — and the
 * expiry keeps counting down while a message waits in the bridge's queue (an
 * expired one is dropped and counted). Upstreams: a real Mosquitto and a
 * second wasmq; clients are mqtt.js speaking v5.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import mqtt, { type IClientPublishOptions, type IPublishPacket, type MqttClient } from "mqtt";
import { bridgesOf } from "../broker/bridge/index.js";
import { FAST, sleep, startLoggedBroker, until, upstreamKinds } from "./bridge-support.js";
import { writeFileSync } from "node:fs";
import { ROOT, tempDir } from "./helpers.js";
import { CutProxy } from "./mqtt-cut-proxy.js";

const dir = tempDir("wasmq-bridge-v5-");
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const UPSTREAMS = upstreamKinds(dir);

const PROPS = {
  userProperties: { site: "site1", unit: ["celsius", "calibrated"], "z-last": "yes" },
  contentType: "application/json",
  payloadFormatIndicator: true,
  responseTopic: "replies/edge-app",
  correlationData: Buffer.from([0xde, 0xad, 0xbe, 0xef]),
};

async function v5Client(url: string, clientId: string): Promise<{ client: MqttClient; got: IPublishPacket[] }> {
  const client = await mqtt.connectAsync(url, { clientId, protocolVersion: 5, reconnectPeriod: 0 });
  const got: IPublishPacket[] = [];
  client.on("message", (_t, _p, packet) => got.push(packet));
  return { client, got };
}

function assertCrossed(packet: IPublishPacket | undefined, what: string): void {
  assert.ok(packet, `${what} arrived`);
  const p = packet.properties ?? {};
  assert.deepEqual({ ...p.userProperties }, PROPS.userProperties, `${what}: user properties`);
  assert.deepEqual(Object.keys(p.userProperties ?? {}), Object.keys(PROPS.userProperties), `${what}: user property order`);
  assert.equal(p.contentType, PROPS.contentType, `${what}: content type`);
  assert.equal(p.payloadFormatIndicator, true, `${what}: payload format indicator`);
  assert.equal(p.responseTopic, PROPS.responseTopic, `${what}: response topic`);
  assert.deepEqual(p.correlationData, PROPS.correlationData, `${what}: correlation data`);
  assert.ok(typeof p.messageExpiryInterval === "number" && p.messageExpiryInterval > 0 && p.messageExpiryInterval <= 300, `${what}: message expiry ${p.messageExpiryInterval}`);
}

for (const [kind, startUpstream, available] of UPSTREAMS) {
  describe(`MQTT 5 properties across a bridge to ${kind}`, { skip: !available && "mosquitto not installed" }, () => {
    test("out and in: user properties in order, content type, payload format, response topic, correlation data, expiry", async () => {
      const upstream = await startUpstream();
      const edge = await startLoggedBroker(
        { bridges: [{ name: "cloud", url: upstream.url, protocolVersion: 5, ...FAST, out: [{ topic: "sensors/#", remotePrefix: "site1/" }], in: [{ topic: "commands/#", remotePrefix: "site1/" }] }] },
        join(dir, `edge-${n++}`),
      );
      const cloud = await v5Client(upstream.url, `cloud-app-${n++}`);
      const app = await v5Client(edge.url, `edge-app-${n++}`);
      try {
        await cloud.client.subscribeAsync("site1/sensors/#", { qos: 1 });
        await app.client.subscribeAsync("commands/#", { qos: 1 });
        await edge.waitLine(/bridge cloud connected/);
        const opts: IClientPublishOptions = { qos: 1, properties: { ...PROPS, messageExpiryInterval: 300 } };
        await app.client.publishAsync("sensors/t1", "21.5", opts);
        await until("reading upstream", () => cloud.got.length > 0);
        assertCrossed(cloud.got[0], "outbound");
        // Inbound: the bridge's subscription may still be in flight; probe until one lands, then the real command.
        for (let i = 0; !app.got.some((m) => m.payload.toString() === "probe") && i < 400; i++) {
          await cloud.client.publishAsync("site1/commands/probe", "probe", { qos: 1 });
          await sleep(25);
        }
        await cloud.client.publishAsync("site1/commands/reboot", "now", opts);
        await until("command at the edge", () => app.got.some((m) => m.payload.toString() === "now"));
        assertCrossed(app.got.find((m) => m.payload.toString() === "now"), "inbound");
      } finally {
        await cloud.client.endAsync();
        await app.client.endAsync();
        await edge.broker.close();
        await upstream.stop();
      }
    });

    test("expiry counts down while queued; a message that expires in the queue is dropped and counted, never sent", async () => {
      const upstream = await startUpstream();
      const proxy = await CutProxy.start(upstream.port);
      proxy.block(); // the upstream looks down to the edge
      const edge = await startLoggedBroker(
        { bridges: [{ name: "cloud", url: proxy.url, protocolVersion: 5, ...FAST, out: [{ topic: "sensors/#" }] }] },
        join(dir, `edge-${n++}`),
      );
      const cloud = await v5Client(upstream.url, `cloud-app-${n++}`);
      const app = await v5Client(edge.url, `edge-app-${n++}`);
      try {
        await cloud.client.subscribeAsync("sensors/#", { qos: 1 });
        await app.client.publishAsync("sensors/a", "short-lived", { qos: 1, properties: { messageExpiryInterval: 1 } });
        await app.client.publishAsync("sensors/a", "long-lived", { qos: 1, properties: { messageExpiryInterval: 120 } });
        await app.client.publishAsync("sensors/a", "forever", { qos: 1 });
        const bridge = bridgesOf(edge.broker.aedes)[0]!;
        assert.equal(bridge.queue.depth, 3);
        await until("the short-lived message expired in the queue", () => bridge.counters.dropped.expired === 1);
        assert.equal(bridge.queue.depth, 2);
        // At least two seconds queued by now: what is left of 120 s is at most 118.
        await sleep(1000);
        proxy.passThrough();
        await until("both others upstream", () => cloud.got.length >= 2);
        await until("queue drained", () => bridge.queue.depth === 0);
        assert.deepEqual(cloud.got.map((m) => m.payload.toString()), ["long-lived", "forever"]);
        const left = cloud.got[0]!.properties?.messageExpiryInterval;
        assert.ok(typeof left === "number" && left <= 118 && left > 0, `expiry counted down while queued: ${left}`);
        assert.equal(cloud.got[1]!.properties?.messageExpiryInterval, undefined, "no expiry stays no expiry");
        assert.equal(bridge.counters.dropped.expired, 1);
      } finally {
        await cloud.client.endAsync();
        await app.client.endAsync();
        await edge.broker.close();
        await proxy.close();
        await upstream.stop();
      }
    });
  });
}

describe("plugins see and change the v5 fields of bridged messages", () => {
  test("a plugin tags what crosses, out (deliver to $bridge/cloud) and in (publish from it); each message keeps its own fields", async () => {
    // A native plugin written for this test: it adds a user property naming the direction and the content type it saw.
    const plugin = join(dir, "tag-native.mjs");
    writeFileSync(
      plugin,
      [
        `import { Verdict } from ${JSON.stringify(join(ROOT, "dist/host/native/index.js"))};`,
        "export function init() { return true; }",
        "const tag = (msg, dir) => { if (msg.clientId === '$bridge/cloud') msg.addUserProperty('via', dir + ':' + (msg.contentType ?? 'none')); return Verdict.Continue; };",
        "export function onPublish(msg) { return tag(msg, 'in'); }",
        "export function onDeliver(msg) { return tag(msg, 'out'); }",
        "",
      ].join("\n"),
    );
    const cloudBroker = await startLoggedBroker({}, join(dir, `cloud-${n++}`));
    const edge = await startLoggedBroker(
      {
        plugins: [{ name: "tag", native: plugin }],
        bridges: [{ name: "cloud", url: cloudBroker.url, protocolVersion: 5, ...FAST, out: [{ topic: "sensors/#" }], in: [{ topic: "commands/#" }] }],
      },
      join(dir, `edge-${n++}`),
    );
    const cloud = await v5Client(cloudBroker.url, `cloud-app-${n++}`);
    const app = await v5Client(edge.url, `edge-app-${n++}`);
    try {
      await cloud.client.subscribeAsync("sensors/#", { qos: 1 });
      await app.client.subscribeAsync("commands/#", { qos: 1 });
      await edge.waitLine(/bridge cloud connected/);
      await app.client.publishAsync("sensors/a", "r1", { qos: 1, properties: { contentType: "text/plain", userProperties: { k: "v" } } });
      await until("reading upstream", () => cloud.got.length > 0);
      assert.deepEqual({ ...cloud.got[0]!.properties?.userProperties }, { k: "v", via: "out:text/plain" });
      for (let i = 0; !app.got.some((m) => m.payload.toString() === "probe") && i < 400; i++) {
        await cloud.client.publishAsync("commands/probe", "probe", { qos: 1 });
        await sleep(25);
      }
      // No content type on this one: the plugin must not see the previous message's fields.
      await cloud.client.publishAsync("commands/go", "go", { qos: 1, properties: { userProperties: { c: "1" } } });
      await until("command at the edge", () => app.got.some((m) => m.payload.toString() === "go"));
      const got = app.got.find((m) => m.payload.toString() === "go")!;
      assert.deepEqual({ ...got.properties?.userProperties }, { c: "1", via: "in:none" });
      assert.equal(got.properties?.contentType, undefined);
    } finally {
      await cloud.client.endAsync();
      await app.client.endAsync();
      await edge.broker.close();
      await cloudBroker.broker.close();
    }
  });
});
