// Mutual TLS on the TLS and secure WebSocket listeners, end to end: a CA,
// server and client certificates made by openssl in this run; mqtt.js and
// mosquitto_pub as clients; the certauth plugin (one fingerprint allowed), a
// probe plugin that reports what the connect hook sees through the SDK's
// msg.certificate(), and the acl plugin checking the CN-mapped username.
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { Writable } from "node:stream";
import { pino } from "pino";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import mqtt, { type IClientOptions } from "mqtt";
import { ConfigError, parseRawConfig, resolveConfig, type RawConfig } from "../broker/config.js";
import { startBroker, StartError, type RunningBroker } from "../broker/server.js";
import { buildSource } from "./fixtures.js";
import { collect, connect, connectRefused, end, startTestBroker, subscribe, tempDir, wasm, type TestBroker } from "./helpers.js";
import { hasCommand, killSpawned, runProcess } from "./broker-support.js";
import { opensslDescribe, TestCa, type Issued } from "./pki.js";

// What the probe plugin publishes for every CONNECT it lets through.
const PROBE = `
import { Message, Verdict, publish } from "SDK_PATH";
export * from "SDK_PATH/exports";
function q(s: string): string { return "\\"" + s.replaceAll("\\\\", "\\\\\\\\").replaceAll("\\"", "\\\\\\"") + "\\""; }
export function onConnect(msg: Message): i32 {
  const c = msg.certificate();
  let body = "{\\"username\\":" + (msg.hasUsername ? q(msg.username) : "null") + ",\\"hasCertificate\\":" + (msg.hasCertificate ? "true" : "false");
  if (c !== null) {
    const sans: string[] = [];
    for (let i = 0; i < c.subjectAltNames.length; i++) sans.push(q(c.subjectAltNames[i]));
    body += ",\\"cert\\":{\\"subject\\":" + q(c.subject) + ",\\"subjectCommonName\\":" + q(c.subjectCommonName)
      + ",\\"issuer\\":" + q(c.issuer) + ",\\"issuerCommonName\\":" + q(c.issuerCommonName)
      + ",\\"subjectAltNames\\":[" + sans.join(",") + "],\\"notBefore\\":" + c.notBefore.toString()
      + ",\\"notAfter\\":" + c.notAfter.toString() + ",\\"fingerprint\\":" + q(c.fingerprint) + ",\\"serialNumber\\":" + q(c.serialNumber) + "}";
  }
  publish("probe/" + msg.clientId, body + "}", 0, true);
  return Verdict.Continue;
}
`;

interface Probe {
  username: string | null;
  hasCertificate: boolean;
  cert?: { subject: string; subjectCommonName: string; issuer: string; issuerCommonName: string; subjectAltNames: string[]; notBefore: number; notAfter: number; fingerprint: string; serialNumber: string };
}

let dir: string;
let root: TestCa;
let rogue: TestCa;
let server: Issued;
let device1: Issued;
let device2: Issued;
let expired: Issued;
let revoked: Issued;
let untrusted: Issued;
let crlFile: string;
let probeWasm: string;

before(async () => {
  dir = tempDir("wasmq-mtls-");
  root = new TestCa(dir, "root", "wasmq Test Root");
  rogue = new TestCa(dir, "rogue", "Some Other CA");
  server = root.issue("localhost", { server: true });
  device1 = root.issue("dev-1", { sans: "DNS:dev-1.devices.example,URI:urn:device:dev-1" });
  device2 = root.issue("dev-2");
  expired = root.issue("dev-old", { validity: { start: "20200101000000Z", end: "20200201000000Z" } });
  revoked = root.issue("dev-stolen");
  untrusted = rogue.issue("dev-1"); // same CN, wrong CA
  root.revoke(revoked);
  crlFile = root.crl();
  probeWasm = await buildSource(PROBE, join(dir, "probe.wasm"));
});

after(async () => {
  await killSpawned();
  rmSync(dir, { recursive: true, force: true });
});

function tlsOpts(leaf?: Issued, extra: IClientOptions = {}): IClientOptions {
  return { ca: root.cert, rejectUnauthorized: true, ...(leaf ? { cert: leaf.cert, key: leaf.key } : {}), ...extra };
}

/** Connect expecting the TLS layer to refuse: resolves to what the client saw; rejects on a CONNACK. */
function handshakeRefused(url: string, opts: IClientOptions): Promise<string> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...opts });
  return new Promise((resolve, reject) => {
    let error = "";
    client.on("connect", (connack) => {
      client.end(true);
      reject(new Error(`the broker answered CONNACK ${connack.returnCode}: the handshake was not refused`));
    });
    client.on("error", (err) => (error ||= err.message));
    client.once("close", () => {
      client.end(true);
      resolve(error || "closed");
    });
  });
}

function onceMessage(got: ReturnType<typeof collect>, topic: string): Promise<Probe> {
  const find = () => got.messages.find((m) => m.topic === topic);
  const seen = find();
  if (seen) return Promise.resolve(JSON.parse(seen.payload.toString()) as Probe);
  return (async () => {
    for (let n = got.messages.length + 1; ; n++) {
      await got.waitFor(n);
      const m = find();
      if (m) return JSON.parse(m.payload.toString()) as Probe;
    }
  })();
}

describe("requireClientCert with a CRL, certauth allowing one fingerprint (TLS and WSS)", () => {
  let broker: TestBroker;
  let tlsUrl: string;
  let wssUrl: string;

  before(async () => {
    broker = await startTestBroker({
      persistence: "memory",
      tls: { port: 0, cert: server.certFile, key: server.keyFile, ca: root.certFile, crl: crlFile, requireClientCert: true, wsPort: 0 },
      plugins: [
        { name: "probe", wasm: probeWasm },
        { name: "certauth", wasm: wasm("certauth"), config: { fingerprints: [device1.opensslFingerprint] } },
      ],
    });
    tlsUrl = `mqtts://127.0.0.1:${broker.port("tls")}`;
    wssUrl = `wss://127.0.0.1:${broker.port("wss")}/mqtt`;
  });
  after(() => broker.stop());

  test("the allowed device connects over TLS; the connect hook sees its certificate as openssl reads it", async () => {
    const watcher = await connect(tlsUrl, tlsOpts(device1, { clientId: "watcher" }));
    const got = collect(watcher);
    await subscribe(watcher, "probe/#");
    const c = await connect(tlsUrl, tlsOpts(device1, { clientId: "dev-1-tls", username: "whatever" }));
    const probe = await onceMessage(got, "probe/dev-1-tls");
    const want = opensslDescribe(device1.certFile);
    assert.equal(probe.hasCertificate, true);
    assert.equal(probe.username, "whatever", "without useIdentityAsUsername the client's username stands");
    assert.deepEqual(probe.cert, {
      subject: want.subject,
      subjectCommonName: "dev-1",
      issuer: want.issuer,
      issuerCommonName: "wasmq Test Root",
      subjectAltNames: ["DNS:dev-1.devices.example", "URI:urn:device:dev-1"],
      notBefore: want.notBefore,
      notAfter: want.notAfter,
      fingerprint: device1.opensslFingerprint.replaceAll(":", "").toLowerCase(),
      serialNumber: want.serial,
    });
    await end(c, watcher);
  });

  test("the allowed device connects over secure WebSocket and its certificate reaches the hook", async () => {
    const watcher = await connect(tlsUrl, tlsOpts(device1, { clientId: "watcher-ws" }));
    const got = collect(watcher);
    await subscribe(watcher, "probe/#");
    const c = await connect(wssUrl, tlsOpts(device1, { clientId: "dev-1-wss" }));
    const probe = await onceMessage(got, "probe/dev-1-wss");
    assert.equal(probe.cert?.subjectCommonName, "dev-1");
    assert.equal(probe.cert?.fingerprint, device1.opensslFingerprint.replaceAll(":", "").toLowerCase());
    await end(c, watcher);
  });

  test("another trusted certificate is refused by the plugin with CONNACK 5 (TLS and WSS)", async () => {
    assert.equal(await connectRefused(tlsUrl, tlsOpts(device2, { clientId: "dev-2" })), 5);
    assert.equal(await connectRefused(wssUrl, tlsOpts(device2, { clientId: "dev-2" })), 5);
  });

  for (const [name, leaf] of [["untrusted (another CA)", () => untrusted], ["expired", () => expired], ["revoked (in the CRL)", () => revoked], ["absent", () => undefined]] as const) {
    test(`a client certificate that is ${name} fails the handshake over TLS and WSS`, async () => {
      const opts = tlsOpts(leaf(), { clientId: `refused-${name}` });
      await handshakeRefused(tlsUrl, opts);
      await handshakeRefused(wssUrl, opts);
    });
  }

  test("mosquitto_pub: the allowed device publishes; another trusted device is not authorised; an expired one fails in TLS", { skip: !hasCommand("mosquitto_pub") && "mosquitto_pub not installed" }, async () => {
    const watcher = await connect(tlsUrl, tlsOpts(device1, { clientId: "watcher-mosq" }));
    const got = collect(watcher);
    await subscribe(watcher, "mosq/#", 1);
    const pub = (leaf: Issued, topic: string) =>
      runProcess("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(broker.port("tls")), "--cafile", root.certFile, "--cert", leaf.certFile, "--key", leaf.keyFile, "-i", `mosq-${topic}`, "-t", `mosq/${topic}`, "-q", "1", "-m", topic]).finished;
    const ok = await pub(device1, "allowed");
    assert.equal(ok.code, 0, ok.stderr);
    const [m] = await got.waitFor(1);
    assert.equal(m!.payload.toString(), "allowed");
    const refused = await pub(device2, "other");
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /not authori[sz]ed/i);
    const old = await pub(expired, "old");
    assert.notEqual(old.code, 0);
    assert.doesNotMatch(old.stderr, /not authori[sz]ed/i, "refused in the handshake, not by a plugin");
    await end(watcher);
  });
});

describe("requestClientCert with useIdentityAsUsername: the CN is the username for plugins and ACLs", () => {
  let broker: TestBroker;
  let tlsUrl: string;

  before(async () => {
    broker = await startTestBroker({
      persistence: "memory",
      tls: { port: 0, cert: server.certFile, key: server.keyFile, ca: root.certFile, requestClientCert: true, useIdentityAsUsername: true, minVersion: "TLSv1.3" },
      plugins: [
        { name: "probe", wasm: probeWasm },
        { name: "acl", wasm: wasm("acl"), config: { default: "deny", rules: [{ topic: "devices/%u/#", access: "readwrite" }, { topic: "probe/#", access: "read" }] } },
      ],
    });
    tlsUrl = `mqtts://127.0.0.1:${broker.port("tls")}`;
  });
  after(() => broker.stop());

  test("the username the client sent is replaced by the certificate's CN, in the connect hook and in ACL decisions", async () => {
    const c = await connect(tlsUrl, tlsOpts(device1, { clientId: "cn-user", username: "spoofed", password: "ignored" }));
    const got = collect(c);
    assert.deepEqual(await subscribe(c, "probe/cn-user"), [0]);
    const probe = await onceMessage(got, "probe/cn-user"); // retained by the probe
    assert.equal(probe.username, "dev-1");
    assert.deepEqual(await subscribe(c, "devices/dev-1/#"), [0], "the CN's own tree is allowed");
    assert.deepEqual(await subscribe(c, "devices/spoofed/#"), [128], "the username the client sent grants nothing");
    await end(c);
  });

  test("a client without a certificate gets CONNACK 4 (no identity to use), as Mosquitto answers", async () => {
    assert.equal(await connectRefused(tlsUrl, tlsOpts(undefined, { clientId: "anon", username: "dev-1" })), 4);
  });

  test("in request mode a certificate that is presented must still verify", async () => {
    await handshakeRefused(tlsUrl, tlsOpts(untrusted, { clientId: "rogue" }));
    await handshakeRefused(tlsUrl, tlsOpts(expired, { clientId: "old" }));
  });

  test("minVersion TLSv1.3 refuses a TLS 1.2 client", async () => {
    await handshakeRefused(tlsUrl, tlsOpts(device1, { clientId: "tls12", maxVersion: "TLSv1.2" } as IClientOptions));
  });
});

test("names with characters RFC 4514 escapes: the subject reads as openssl prints it, the CN unescaped", async () => {
  const { X509Certificate } = await import("node:crypto");
  const { describeCertificate } = await import("../broker/net/tls-options.js");
  const leaf = root.issue('dev "7", Halle\\+Nord'); // "\\+": a literal '+' in openssl's -subj
  const seen = describeCertificate(new X509Certificate(leaf.cert));
  assert.equal(seen.subjectCommonName, 'dev "7", Halle+Nord');
  assert.equal(seen.subject, opensslDescribe(leaf.certFile).subject);
  assert.match(seen.subject, /^O=wasmq devices,CN=dev \\"7\\"\\, Halle\\\+Nord$/); // the CA policy put CN first in the certificate
});

describe("mutual TLS config errors name the key and the file", () => {
  const resolve = (tls: Record<string, unknown>) => resolveConfig(parseRawConfig({ tls }, "mtls.json"), join(dir, "mtls.json"));
  const base = () => ({ cert: server.certFile, key: server.keyFile });

  test("a missing CA bundle", () => {
    assert.throws(() => resolve({ ...base(), ca: join(dir, "nope.pem"), requireClientCert: true }), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /mtls\.json.*key "tls\.ca": file .*nope\.pem does not exist/);
      return true;
    });
  });

  test("client certificates without a CA bundle", () => {
    assert.throws(() => resolve({ ...base(), requireClientCert: true }), /key "tls\.requireClientCert": needs "tls\.ca"/);
    assert.throws(() => resolve({ ...base(), useIdentityAsUsername: true }), /key "tls\.useIdentityAsUsername"/);
  });

  test("a CRL file that is not a CRL, a CA file that holds no certificate", () => {
    const junk = join(dir, "junk.pem");
    writeFileSync(junk, "not pem\n");
    assert.throws(() => resolve({ ...base(), ca: root.certFile, requireClientCert: true, crl: junk }), /mtls\.json.*key "tls\.crl": .*junk\.pem is not a PEM certificate revocation list/);
    assert.throws(() => resolve({ ...base(), ca: junk, requireClientCert: true }), /key "tls\.ca": .*junk\.pem is not a PEM CA bundle/);
  });

  test("a key that does not belong to the certificate", () => {
    assert.throws(() => resolve({ cert: server.certFile, key: device1.keyFile }), /key "tls\.key": .* is not the private key of /);
  });

  test("an unknown minVersion", () => {
    assert.throws(() => resolve({ ...base(), minVersion: "TLSv1.0" }), /key "tls\.minVersion"/);
  });
});

describe("operations", () => {
  async function startLogged(raw: RawConfig): Promise<{ broker: RunningBroker; lines: { msg: string; reason?: string; peer?: string }[] }> {
    const lines: { msg: string; reason?: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, callback) {
        for (const text of chunk.toString("utf8").split("\n")) if (text) lines.push(JSON.parse(text) as { msg: string });
        callback();
      },
    });
    const config = resolveConfig(parseRawConfig({ port: 0, ws: false, persistence: "memory", sys: false, data: join(dir, "data"), ...raw }, "test config"), null);
    return { broker: await startBroker(config, { logger: pino({ level: "info" }, sink) }), lines };
  }

  test("a refused handshake is logged with OpenSSL's reason", async () => {
    const { broker, lines } = await startLogged({
      tls: { port: 0, cert: server.certFile, key: server.keyFile, ca: root.certFile, requireClientCert: true },
    });
    try {
      await handshakeRefused(`mqtts://127.0.0.1:${broker.port("tls")}`, tlsOpts(expired));
      for (let i = 0; i < 500 && !lines.some((l) => l.msg === "TLS handshake refused"); i++) await new Promise((r) => setTimeout(r, 10));
      const line = lines.find((l) => l.msg === "TLS handshake refused");
      assert.ok(line, JSON.stringify(lines));
      assert.match(line.reason ?? "", /CERT_HAS_EXPIRED/);
    } finally {
      await broker.close();
    }
  });

  test("reloadTls (SIGHUP) picks up a new CRL: a device revoked after start-up is refused from then on; a bad CRL is refused and the old one kept", async () => {
    const ca = new TestCa(dir, "reload-ca", "Reload CA");
    const srv = ca.issue("localhost", { server: true });
    const device = ca.issue("dev-later");
    const other = ca.issue("dev-other");
    const crl = ca.crl();
    const { broker } = await startLogged({ tls: { port: 0, cert: srv.certFile, key: srv.keyFile, ca: ca.certFile, crl, requireClientCert: true, wsPort: 0 }, allowAnonymous: true });
    try {
      const opts = { ca: ca.cert, cert: device.cert, key: device.key, rejectUnauthorized: true };
      const urls = [`mqtts://127.0.0.1:${broker.port("tls")}`, `wss://127.0.0.1:${broker.port("wss")}/mqtt`];
      for (const url of urls) await end(await connect(url, opts));
      ca.revoke(device);
      ca.crl(); // rewrites the same file
      for (const url of urls) await end(await connect(url, opts)); // not re-read yet
      broker.reloadTls();
      for (const url of urls) await handshakeRefused(url, opts);
      writeFileSync(crl, "junk");
      assert.throws(() => broker.reloadTls(), /key "tls\.crl": .* is not a PEM certificate revocation list/);
      for (const url of urls) await handshakeRefused(url, opts); // the revocation still holds
      for (const url of urls) await end(await connect(url, { ...opts, cert: other.cert, key: other.key }));
    } finally {
      await broker.close();
    }
  });

  test("a public TLS listener that requires client certificates needs no auth plugin; one that only requests them does", async () => {
    const tls = { host: "0.0.0.0", port: 0, cert: server.certFile, key: server.keyFile, ca: root.certFile };
    const { broker } = await startLogged({ tls: { ...tls, requireClientCert: true } });
    await broker.close();
    await assert.rejects(startLogged({ tls: { ...tls, requestClientCert: true } }), (err: Error) => {
      assert.ok(err instanceof StartError);
      assert.match(err.message, /refusing to listen on 0\.0\.0\.0 without authentication/);
      return true;
    });
  });
});

