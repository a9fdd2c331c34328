// MQTT 5 with independent clients: Mosquitto's mosquitto_pub / mosquitto_sub
// (-V mqttv5, -D properties) and Debian's python3-paho-mqtt (MQTTv5).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { hasCommand, killSpawned, runProcess, subscribedOn } from "./broker-support.js";
import { ROOT, startTestBroker, type TestBroker } from "./helpers.js";
import { connect5, uid } from "./mqtt5-raw.js";

let broker: TestBroker;
before(async () => {
  broker = await startTestBroker({ persistence: "lmdb" });
});
afterEach(() => killSpawned());
after(() => broker.stop());

const mosquittoMissing = hasCommand("mosquitto_pub") && hasCommand("mosquitto_sub") ? false : "mosquitto-clients not installed (.ci/run installs it)";
const PYTHON = "/usr/bin/python3";
const pahoMissing = existsSync("/usr/lib/python3/dist-packages/paho/mqtt/client.py") ? false : "python3-paho-mqtt not installed (.ci/run installs it)";

describe("mosquitto_pub / mosquitto_sub -V mqttv5", { skip: mosquittoMissing, timeout: 60_000 }, () => {
  const port = () => String(broker.port("tcp"));

  test("user properties (in order), content type, response topic, correlation data and message expiry round trip", async () => {
    const topic = uid("mosq5");
    const subscribed = subscribedOn(broker, topic);
    // %P user properties, %C content type, %R response topic, %D correlation data, %E message expiry
    const sub = runProcess("mosquitto_sub", ["-V", "mqttv5", "-h", "127.0.0.1", "-p", port(), "-t", topic, "-q", "1", "-C", "1", "-W", "15", "-F", "%p|%P|%C|%R|%D|%E"]);
    await subscribed;
    const pub = await runProcess("mosquitto_pub", [
      "-V", "mqttv5", "-h", "127.0.0.1", "-p", port(), "-t", topic, "-q", "1", "-m", "hello v5",
      "-D", "publish", "user-property", "zone", "north",
      "-D", "publish", "user-property", "alpha", "1",
      "-D", "publish", "content-type", "text/plain",
      "-D", "publish", "response-topic", `${topic}/reply`,
      "-D", "publish", "correlation-data", "req-17",
      "-D", "publish", "message-expiry-interval", "300",
    ]).finished;
    assert.equal(pub.code, 0, pub.stderr);
    const got = await sub.finished;
    assert.equal(got.code, 0, got.stderr);
    const [payload, users, contentType, responseTopic, correlation, expiry] = got.stdout.trim().split("|");
    assert.equal(payload, "hello v5");
    assert.equal(users, "zone:north alpha:1");
    assert.equal(contentType, "text/plain");
    assert.equal(responseTopic, `${topic}/reply`);
    assert.equal(correlation, "req-17");
    assert.ok(Number(expiry) > 290 && Number(expiry) <= 300, `expiry ${expiry}`);
  });

  test("request/response: an mqtt.js v5 responder answers mosquitto_pub's response topic with its correlation data", async () => {
    const topic = uid("req");
    const { client: responder } = await connect5(broker.url, { clientId: uid("responder") });
    responder.on("message", (_t, payload, packet) => {
      const p = packet.properties ?? {};
      void responder.publishAsync(p.responseTopic!, `re: ${payload}`, { qos: 1, properties: { correlationData: p.correlationData! } });
    });
    await responder.subscribeAsync(topic, { qos: 1 });
    const replyTopic = `${topic}/reply`;
    const subscribed = subscribedOn(broker, replyTopic);
    const sub = runProcess("mosquitto_sub", ["-V", "mqttv5", "-h", "127.0.0.1", "-p", port(), "-t", replyTopic, "-q", "1", "-C", "1", "-W", "15", "-F", "%p|%D"]);
    await subscribed;
    const pub = await runProcess("mosquitto_pub", ["-V", "mqttv5", "-h", "127.0.0.1", "-p", port(), "-t", topic, "-q", "1", "-m", "ping", "-D", "publish", "response-topic", replyTopic, "-D", "publish", "correlation-data", "c-42"]).finished;
    assert.equal(pub.code, 0, pub.stderr);
    const got = await sub.finished;
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout.trim(), "re: ping|c-42");
    await responder.endAsync();
  });
});

describe("python3-paho-mqtt, MQTTv5", { skip: pahoMissing, timeout: 60_000 }, () => {
  test("CONNACK, subscription identifier, and a message with properties round trip", async () => {
    const topic = uid("paho");
    const run = await runProcess(PYTHON, [join(ROOT, "test/fixtures/paho-v5.py"), String(broker.port("tcp")), topic]).finished;
    assert.equal(run.code, 0, run.stderr);
    const r = JSON.parse(run.stdout.trim().split("\n").pop()!) as Record<string, unknown>;
    assert.equal(r.connack, 0);
    assert.equal(r.receiveMaximum, 100);
    assert.equal(r.payload, "from paho");
    assert.deepEqual(r.userProperties, [["first", "1"], ["second", "2"]]);
    assert.equal(r.responseTopic, `${topic}/reply`);
    assert.deepEqual(r.correlationData, [1, 2]);
    assert.equal(r.contentType, "text/plain");
    assert.ok(Number(r.messageExpiryInterval) > 110 && Number(r.messageExpiryInterval) <= 120);
    assert.deepEqual([r.subscriptionIdentifier].flat(), [42]);
  });
});
