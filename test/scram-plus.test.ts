// SCRAM-SHA-256-PLUS with tls-exporter channel binding (RFC 5802 section 6, RFC 9266)
// over a real TLS listener (test CA from openssl), mqtt.js v5 clients: the proof
// is bound to the client's own TLS 1.3 connection — the exporter of another TLS
// connection (what a man in the middle terminating TLS would have) fails; TLS 1.2
// and plain TCP have no binding; a "y" gs2 flag where PLUS is offered is a
// downgrade; `channelBinding: false` does not offer the method. The same over
// MQTT over WebSocket over TLS (wss://), where the binding is the TLS connection
// under the WebSocket. Both twins.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { after, before, describe, test } from "node:test";
import type { IClientOptions } from "mqtt";
import { WebSocket } from "ws";
import { deriveCredentials } from "../plugins-as/scram/native.js";
import { end, native, startTestBroker, tempDir, wasm, type TestBroker } from "./helpers.js";
import { uid } from "./mqtt5-raw.js";
import { TestCa } from "./pki.js";
import { scramConnect } from "./scram-client.js";

const users = [deriveCredentials("alice", "wonderland")];
let dir: string;
let root: TestCa;
const brokers: Record<"wasm" | "native", TestBroker | undefined> = { wasm: undefined, native: undefined };

before(async () => {
  dir = tempDir("wasmq-scram-plus-");
  root = new TestCa(dir, "root", "wasmq Test Root");
  const server = root.issue("localhost", { server: true });
  for (const kind of ["wasm", "native"] as const) {
    brokers[kind] = await startTestBroker({
      persistence: "memory",
      tls: { port: 0, cert: server.certFile, key: server.keyFile, wsPort: 0 },
      plugins: [{ name: "scram", ...(kind === "wasm" ? { wasm: wasm("scram") } : { native: native("scram") }), config: { users, required: false } }],
    });
  }
});
after(async () => {
  await brokers.wasm?.stop();
  await brokers.native?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const tlsUrl = (b: TestBroker) => `mqtts://127.0.0.1:${b.port("tls")}`;
const tlsOpts = () => ({ ca: root.cert, rejectUnauthorized: true, clientId: uid("plus") });
const refusedWith = (code: number) => (err: Error & { code?: number }) => err.code === code;

const wssUrl = (b: TestBroker) => `wss://127.0.0.1:${b.port("wss")}/mqtt`;
const exporterOf = (socket: TLSSocket) => socket.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0));

/**
 * mqtt.js over wss:// with the WebSocket made here, to reach the TLS socket
 * under it (`ws` keeps it as `_socket`): the client's own channel binding.
 */
function overWss(tls: { maxVersion?: "TLSv1.2" } = {}): { opts: IClientOptions; ownExporter: () => Buffer } {
  let ws: WebSocket | null = null;
  return {
    opts: {
      ...tlsOpts(),
      createWebsocket: (url: string, protocols: string[]) => (ws = new WebSocket(url, protocols, { ca: root.cert, rejectUnauthorized: true, ...tls })),
    },
    ownExporter: () => exporterOf((ws as unknown as { _socket: TLSSocket })._socket),
  };
}

/** The tls-exporter value of another, separate TLS connection to the broker: what a relaying man in the middle would bind to. */
async function otherConnectionsExporter(b: TestBroker): Promise<Buffer> {
  const socket: TLSSocket = await new Promise((resolve, reject) => {
    const s = tlsConnect({ host: "127.0.0.1", port: b.port("tls"), ca: root.cert, servername: "localhost" }, () => resolve(s));
    s.once("error", reject);
  });
  const value = socket.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0));
  socket.destroy();
  return value;
}

describe("SCRAM-SHA-256-PLUS (tls-exporter, RFC 9266)", { timeout: 120_000 }, () => {
  for (const kind of ["wasm", "native"] as const) {
    const broker = () => brokers[kind]!;

    test(`${kind}: over TLS 1.3 a client binding to its own connection's exporter authenticates and verifies the server's signature`, async () => {
      const { client, connack, scram } = await scramConnect(tlsUrl(broker()), "alice", "wonderland", tlsOpts(), {});
      assert.equal(connack.reasonCode, 0);
      assert.equal(connack.properties?.authenticationMethod, "SCRAM-SHA-256-PLUS");
      assert.ok(scram.verifyServerFinal(connack.properties?.authenticationData as Buffer));
      await end(client);
    });

    test(`${kind}: the exporter of another TLS connection (a relay in the middle) does not verify: CONNACK 0x87`, async () => {
      const foreign = await otherConnectionsExporter(broker());
      await assert.rejects(scramConnect(tlsUrl(broker()), "alice", "wonderland", tlsOpts(), { data: () => foreign }), refusedWith(0x87));
    });

    test(`${kind}: no binding to offer — TLS 1.2, plain TCP — refuses the PLUS method with 0x87`, async () => {
      await assert.rejects(scramConnect(tlsUrl(broker()), "alice", "wonderland", { ...tlsOpts(), maxVersion: "TLSv1.2" } as IClientOptions, { data: () => Buffer.alloc(32) }), refusedWith(0x87));
      await assert.rejects(scramConnect(broker().url, "alice", "wonderland", { clientId: uid("plus") }, { data: () => Buffer.alloc(32) }), refusedWith(0x87));
    });

    test(`${kind}: over wss:// (TLS 1.3 under the WebSocket) a client binding to its own connection's exporter authenticates`, async () => {
      const wss = overWss();
      const { client, connack, scram } = await scramConnect(wssUrl(broker()), "alice", "wonderland", wss.opts, { data: wss.ownExporter });
      assert.equal(connack.reasonCode, 0);
      assert.equal(connack.properties?.authenticationMethod, "SCRAM-SHA-256-PLUS");
      assert.ok(scram.verifyServerFinal(connack.properties?.authenticationData as Buffer));
      await end(client);
    });

    test(`${kind}: over wss:// a wrong binding — another TLS connection's exporter, or none to offer on TLS 1.2 — gets CONNACK 0x87`, async () => {
      const foreign = await otherConnectionsExporter(broker());
      await assert.rejects(scramConnect(wssUrl(broker()), "alice", "wonderland", overWss().opts, { data: () => foreign }), refusedWith(0x87));
      const tls12 = overWss({ maxVersion: "TLSv1.2" });
      await assert.rejects(scramConnect(wssUrl(broker()), "alice", "wonderland", tls12.opts, { data: () => Buffer.alloc(32) }), refusedWith(0x87));
      // the "y" downgrade where PLUS is offered, over wss:// too
      await assert.rejects(scramConnect(wssUrl(broker()), "alice", "wonderland", overWss().opts, { gs2: "y,,", method: "SCRAM-SHA-256" }), refusedWith(0x87));
    });

    test(`${kind}: SCRAM-SHA-256 with gs2 flag "y" is a downgrade where PLUS is offered (TLS 1.3): 0x87; over plain TCP it is accepted`, async () => {
      await assert.rejects(scramConnect(tlsUrl(broker()), "alice", "wonderland", tlsOpts(), { gs2: "y,,", method: "SCRAM-SHA-256" }), refusedWith(0x87));
      const { client, connack } = await scramConnect(broker().url, "alice", "wonderland", { clientId: uid("y") }, { gs2: "y,,", method: "SCRAM-SHA-256" });
      assert.equal(connack.reasonCode, 0);
      await end(client);
      // plain SCRAM-SHA-256 ("n") over TLS still works
      const plain = await scramConnect(tlsUrl(broker()), "alice", "wonderland", tlsOpts());
      assert.equal(plain.connack.reasonCode, 0);
      await end(plain.client);
    });
  }

  test("channelBinding: false does not offer SCRAM-SHA-256-PLUS (CONNACK 0x8C) and accepts a \"y\" flag", async () => {
    const server = root.issue("localhost", { server: true });
    const b = await startTestBroker({ persistence: "memory", tls: { port: 0, cert: server.certFile, key: server.keyFile }, plugins: [{ name: "scram", wasm: wasm("scram"), config: { users, channelBinding: false } }] });
    try {
      await assert.rejects(scramConnect(tlsUrl(b), "alice", "wonderland", tlsOpts(), {}), refusedWith(0x8c));
      const { client, connack } = await scramConnect(tlsUrl(b), "alice", "wonderland", tlsOpts(), { gs2: "y,,", method: "SCRAM-SHA-256" });
      assert.equal(connack.reasonCode, 0);
      await end(client);
    } finally {
      await b.stop();
    }
  });
});

describe("the SCRAM identity and a TLS listener's useIdentityAsUsername", { timeout: 120_000 }, () => {
  test("the certificate's CN stays the username: SCRAM as the same user passes, as another user gets CONNACK 0x86", async () => {
    const server = root.issue("localhost", { server: true });
    const device = root.issue("dev-1");
    const b = await startTestBroker({
      persistence: "memory",
      tls: { port: 0, cert: server.certFile, key: server.keyFile, ca: root.certFile, requestClientCert: true, useIdentityAsUsername: true },
      plugins: [{ name: "scram", wasm: wasm("scram"), config: { users: [...users, deriveCredentials("dev-1", "sensor")] } }],
    });
    try {
      const withCert = () => ({ ...tlsOpts(), cert: device.cert, key: device.key });
      const { client, connack } = await scramConnect(tlsUrl(b), "dev-1", "sensor", withCert(), {});
      assert.equal(connack.reasonCode, 0);
      await end(client);
      await assert.rejects(scramConnect(tlsUrl(b), "alice", "wonderland", withCert(), {}), refusedWith(0x86));
    } finally {
      await b.stop();
    }
  });
});
