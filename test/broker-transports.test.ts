// The same broker over its other transports (WebSocket at /mqtt, TLS with a
// certificate made by openssl for this run) and with an independent client,
// Mosquitto's mosquitto_pub / mosquitto_sub, against mqtt.js.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, afterEach, before, describe, test } from "node:test";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { hasCommand, killSpawned, makeSelfSignedCert, runProcess, subscribedOn, type SelfSignedCert } from "./broker-support.js";
import { collect, connect, end, settle, startTestBroker, subscribe, tempDir, type TestBroker } from "./helpers.js";

let broker: TestBroker;
let certDir: string;
let cert: SelfSignedCert;
// Every client a test opens, ended after it: the broker cannot stop with clients attached.
let open: MqttClient[] = [];

async function client(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const c = await connect(url, opts);
  open.push(c);
  return c;
}

before(async () => {
  certDir = tempDir("wasmq-tls-");
  cert = makeSelfSignedCert(certDir);
  broker = await startTestBroker({ persistence: "lmdb", tls: { port: 0, cert: cert.certFile, key: cert.keyFile } });
});
afterEach(async () => {
  await end(...open);
  open = [];
  await killSpawned();
});
after(async () => {
  await killSpawned();
  await broker.stop();
  rmSync(certDir, { recursive: true, force: true });
});

/** Subscribe, publish at QoS 1, receive; then a retained message for a later subscriber. All on one transport. */
async function roundTrip(url: string, opts: IClientOptions, prefix: string): Promise<void> {
  const sub = await client(url, opts);
  const got = collect(sub);
  assert.deepEqual(await subscribe(sub, `${prefix}/#`, 1), [1]);
  const pub = await client(url, opts);
  const payload = Buffer.from([0, 1, 2, 254, 255]);
  await pub.publishAsync(`${prefix}/live`, payload, { qos: 1 });
  const [live] = await got.waitFor(1);
  assert.equal(live!.topic, `${prefix}/live`);
  assert.equal(live!.qos, 1);
  assert.ok(live!.payload.equals(payload));

  await pub.publishAsync(`${prefix}/kept`, "retained value", { qos: 1, retain: true });
  const later = await client(url, opts);
  const laterGot = collect(later);
  await subscribe(later, `${prefix}/kept`, 1);
  const [retained] = await laterGot.waitFor(1);
  assert.equal(retained!.payload.toString(), "retained value");
  assert.equal(retained!.retain, true);
  assert.equal(retained!.qos, 1);
  // Leave no retained message behind for other tests.
  await pub.publishAsync(`${prefix}/kept`, Buffer.alloc(0), { qos: 1, retain: true });
}

describe("MQTT over WebSocket", () => {
  test("subscribe, QoS 1 publish, receive and retained at ws://…/mqtt", async () => {
    await roundTrip(`ws://127.0.0.1:${broker.port("ws")}/mqtt`, {}, "ws");
  });

  test("WebSocket and TCP clients share one broker", async () => {
    const wsSub = await client(`ws://127.0.0.1:${broker.port("ws")}/mqtt`);
    const got = collect(wsSub);
    await subscribe(wsSub, "cross/ws", 1);
    const tcpPub = await client(broker.url);
    await tcpPub.publishAsync("cross/ws", "from tcp", { qos: 1 });
    const [m] = await got.waitFor(1);
    assert.equal(m!.payload.toString(), "from tcp");
  });
});

describe("MQTT over TLS", () => {
  const tlsUrl = () => `mqtts://127.0.0.1:${broker.port("tls")}`;

  test("subscribe, QoS 1 publish, receive and retained, verifying the server certificate", async () => {
    await roundTrip(tlsUrl(), { ca: cert.cert, servername: "localhost", rejectUnauthorized: true }, "tls");
  });

  test("a client that does not trust the certificate is refused at the handshake", async () => {
    const c = mqtt.connect(tlsUrl(), { reconnectPeriod: 0, connectTimeout: 5000, rejectUnauthorized: true });
    const err = await new Promise<Error & { code?: string }>((resolve, reject) => {
      c.once("connect", () => reject(new Error("connected without trusting the certificate")));
      c.once("error", (e) => resolve(e as Error & { code?: string }));
    });
    c.end(true);
    assert.match(String(err.code ?? err.message), /SELF_SIGNED|self[- ]signed/i);
  });
});

const mosquittoMissing = hasCommand("mosquitto_pub") && hasCommand("mosquitto_sub") ? false : "mosquitto_pub/mosquitto_sub not installed (Debian package mosquitto-clients; .ci/run installs it)";

describe("independent client: Mosquitto's command-line tools", { skip: mosquittoMissing }, () => {
  const port = () => String(broker.port("tcp"));

  /** mosquitto_sub waiting for one QoS 1 message on `topic`; resolves once the broker holds its subscription. */
  async function mosquittoSub(topic: string, extra: string[] = []) {
    const subscribed = subscribedOn(broker, topic);
    const proc = runProcess("mosquitto_sub", ["-h", "127.0.0.1", "-p", port(), "-t", topic, "-q", "1", "-C", "1", "-W", "15", ...extra]);
    await Promise.race([subscribed, proc.finished.then((f) => Promise.reject(new Error(`mosquitto_sub exited early: ${f.code} ${f.stderr}`)))]);
    return proc;
  }

  test("mosquitto_pub → broker → mosquitto_sub", async () => {
    const sub = await mosquittoSub("mosq/both");
    const pub = await runProcess("mosquitto_pub", ["-h", "127.0.0.1", "-p", port(), "-t", "mosq/both", "-q", "1", "-m", "hello from mosquitto"]).finished;
    assert.equal(pub.code, 0, pub.stderr);
    const received = await sub.finished;
    assert.equal(received.code, 0, received.stderr);
    assert.equal(received.stdout, "hello from mosquitto\n");
  });

  test("mosquitto_pub → mqtt.js subscriber", async () => {
    const sub = await client(broker.url);
    const got = collect(sub);
    await subscribe(sub, "mosq/to-mqttjs", 2);
    const pub = await runProcess("mosquitto_pub", ["-h", "127.0.0.1", "-p", port(), "-t", "mosq/to-mqttjs", "-q", "2", "-m", "qos two"]).finished;
    assert.equal(pub.code, 0, pub.stderr);
    const [m] = await got.waitFor(1);
    assert.equal(m!.topic, "mosq/to-mqttjs");
    assert.equal(m!.payload.toString(), "qos two");
    assert.equal(m!.qos, 2);
  });

  test("mqtt.js publisher → mosquitto_sub, including a retained message for a late mosquitto_sub", async () => {
    const sub = await mosquittoSub("mosq/from-mqttjs");
    const pub = await client(broker.url);
    await pub.publishAsync("mosq/from-mqttjs", "hello from mqtt.js", { qos: 1 });
    const received = await sub.finished;
    assert.equal(received.code, 0, received.stderr);
    assert.equal(received.stdout, "hello from mqtt.js\n");

    await pub.publishAsync("mosq/retained", "kept", { qos: 1, retain: true });
    await settle(pub);
    const late = await runProcess("mosquitto_sub", ["-h", "127.0.0.1", "-p", port(), "-t", "mosq/retained", "-q", "1", "-C", "1", "-W", "15", "-F", "%r %q %p"]).finished;
    assert.equal(late.code, 0, late.stderr);
    assert.equal(late.stdout, "1 1 kept\n", "retain flag, QoS, payload");
    await pub.publishAsync("mosq/retained", Buffer.alloc(0), { qos: 1, retain: true });
  });

  test("mosquitto_pub over TLS, checking the certificate against the generated CA", async () => {
    const sub = await client(broker.url);
    const got = collect(sub);
    await subscribe(sub, "mosq/tls", 1);
    const pub = await runProcess("mosquitto_pub", [
      "-h", "127.0.0.1", "-p", String(broker.port("tls")), "--cafile", cert.certFile,
      "-t", "mosq/tls", "-q", "1", "-m", "over tls",
    ]).finished;
    assert.equal(pub.code, 0, pub.stderr);
    const [m] = await got.waitFor(1);
    assert.equal(m!.payload.toString(), "over tls");
  });
});
