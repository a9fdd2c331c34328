/**
 * Issue #14, operations and config: per-bridge status in the admin API and
 * `wasmq admin bridges`, Prometheus metrics, $SYS topics; bad bridge config
 * names the key and the file.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ConfigError, loadConfig } from "../broker/config.js";
import { runAdmin } from "../broker/ops/admin-cli.js";
import { writeConfig } from "./broker-support.js";
import { FAST, publishAll, startLoggedBroker, until } from "./bridge-support.js";
import { connectCollecting, connectRefused, end, tempDir } from "./helpers.js";

const dir = tempDir("wasmq-bridge-ops-");
after(() => rmSync(dir, { recursive: true, force: true }));

describe("bridge operations", () => {
  test("a bridge whose upstream is down: admin API, wasmq admin bridges, /metrics and $SYS show it and its queue", async () => {
    // Port 1: nothing listens there. A port freePort() found free could be handed to a broker of a test
    // running alongside (the kernel reuses a just-closed ephemeral port), and the bridge then connected
    // to it; the kernel never picks a port below its ephemeral range for port 0, and no test binds one.
    const down = 1;
    const edge = await startLoggedBroker(
      {
        metrics: { port: 0 },
        sys: { intervalSec: 1 },
        bridges: [{ name: "cloud", url: `mqtt://127.0.0.1:${down}`, ...FAST, out: [{ topic: "sensors/#", remotePrefix: "site1/" }] }],
      },
      join(dir, "edge"),
    );
    const sys = await connectCollecting(edge.url, { clientId: "sys-reader" });
    try {
      await publishAll(edge.url, 3, () => "sensors/a", "m");
      const admin = edge.broker.admin!.url;
      const body = (await (await fetch(`${admin}/bridges`)).json()) as { bridges: { name: string; connected: boolean; lastError: string; queue: { messages: number; oldestAgeSec: number } }[] };
      assert.equal(body.bridges.length, 1);
      const [b] = body.bridges;
      assert.equal(b!.name, "cloud");
      assert.equal(b!.connected, false);
      assert.equal(b!.queue.messages, 3);
      assert.ok(b!.queue.oldestAgeSec >= 0);
      await until("a connection error", () => edge.lines.some((l) => /cannot connect/.test(l.msg)));
      const one = await fetch(`${admin}/bridges/cloud`);
      assert.equal(one.status, 200);
      assert.equal((await fetch(`${admin}/bridges/nope`)).status, 404);

      const table = await runAdmin(["bridges", "--url", admin]);
      assert.match(table, /^NAME\s+CONNECTED/m);
      assert.match(table, /^cloud\s+no\s+mqtt:\/\/127\.0\.0\.1:\d+\s+3 \(/m);

      const metrics = await (await fetch(`${admin}/metrics`)).text();
      assert.match(metrics, /^wasmq_bridge_connected\{bridge="cloud"\} 0$/m);
      assert.match(metrics, /^wasmq_bridge_queue_messages\{bridge="cloud"\} 3$/m);
      assert.match(metrics, /^wasmq_bridge_dropped_total\{bridge="cloud",reason="drop-oldest"\} 0$/m);

      await sys.client.subscribeAsync("$SYS/broker/bridges/cloud/#", { qos: 0 });
      await until("$SYS queue figure", () => sys.got.messages.some((m) => m.topic === "$SYS/broker/bridges/cloud/queue/messages" && m.payload.toString() === "3"));
      assert.ok(sys.got.messages.some((m) => m.topic === "$SYS/broker/bridges/cloud/connected" && m.payload.toString() === "0"));
    } finally {
      await end(sys.client);
      await edge.broker.close();
    }
  });

  test("a device cannot pose as a bridge: client ids starting with $bridge/ are refused (CONNACK 2)", async () => {
    const broker = await startLoggedBroker({}, join(dir, "posing"));
    try {
      assert.equal(await connectRefused(broker.url, { clientId: "$bridge/cloud" }), 2);
      const ok = await connectCollecting(broker.url, { clientId: "bridge-cloud" });
      await end(ok.client);
    } finally {
      await broker.broker.close();
    }
  });

  test("bad bridge config names the key and the file", () => {
    const cases: [unknown, RegExp][] = [
      [{ bridges: [{ name: "cloud", url: "http://x", out: [{ topic: "a/#" }] }] }, /key "bridges\.0\.url"/],
      [{ bridges: [{ name: "cloud", out: [{ topic: "a/#" }] }] }, /key "bridges\.0": give exactly one of "url" or "urls"/],
      [{ bridges: [{ name: "cloud", url: "mqtt://x", out: [{ topic: "a/#/b" }] }] }, /key "bridges\.0\.out\.0\.topic"/],
      [{ bridges: [{ name: "cloud", url: "mqtt://x", onFull: "panic", out: [{ topic: "a" }] }] }, /key "bridges\.0\.onFull"/],
      [{ bridges: [{ name: "cloud", url: "mqtt://x" }] }, /key "bridges\.0": bridge cloud has no "out" and no "in"/],
      [{ bridges: [{ name: "cloud", url: "mqtt://x", in: [{ topic: "a" }], tls: { ca: "missing.pem" } }] }, /key "bridges\.0\.tls\.ca": file .*missing\.pem does not exist/],
      // The TLS keys are the cluster's (tls-client-config.ts): a folder is not a file, a certificate needs its key.
      [{ bridges: [{ name: "cloud", url: "mqtts://x", in: [{ topic: "a" }], tls: { ca: "." } }] }, /key "bridges\.0\.tls\.ca": .* is not a file/],
      [{ bridges: [{ name: "cloud", url: "mqtts://x", in: [{ topic: "a" }], tls: { cert: "c.pem" } }] }, /key "bridges\.0\.tls\.cert": cert and key go together/],
      [
        {
          bridges: [
            { name: "c", url: "mqtt://x", in: [{ topic: "a" }] },
            { name: "c", url: "mqtt://y", in: [{ topic: "a" }] },
          ],
        },
        /key "bridges\.1\.name": the name "c" is used twice/,
      ],
      [{ bridges: [{ name: "c", url: "mqtt://x", in: [{ topic: "a" }], colour: "red" }] }, /unknown key "bridges\.0\.colour"/],
      // Two bridges, one client id, one upstream: each connect would take the other's session over.
      [
        {
          bridges: [
            { name: "a", url: "mqtt://cloud:1883", clientId: "edge", in: [{ topic: "a" }] },
            { name: "b", urls: ["mqtt://other:1883", "mqtt://cloud:1883"], clientId: "edge", out: [{ topic: "b" }] },
          ],
        },
        /key "bridges\.1\.clientId": bridges a and b both connect to mqtt:\/\/cloud:1883 as "edge"/,
      ],
      [{ bridges: [{ name: "c", url: "mqtt://x", in: [{ topic: "a" }], notificationTopic: "edge/state" }] }, /key "bridges\.0\.notificationTopic": set "notifications": true/],
      [{ bridges: [{ name: "c", url: "mqtt://x", in: [{ topic: "a" }], notifications: true, notificationTopic: "edge/#" }] }, /key "bridges\.0\.notificationTopic"/],
      // TLS settings with a plain URL would be ignored: refused.
      [{ bridges: [{ name: "c", url: "mqtt://x", in: [{ topic: "a" }], tls: { rejectUnauthorized: false } }] }, /key "bridges\.0\.tls": TLS settings need mqtts:\/\/ or wss:\/\/ URLs, but mqtt:\/\/x is not encrypted/],
    ];
    cases.forEach(([config, expected], i) => {
      const file = writeConfig(dir, `bad-${i}.json`, config);
      assert.throws(
        () => loadConfig(file),
        (err: unknown) => err instanceof ConfigError && expected.test(err.message) && err.message.includes(file),
        `case ${i}: ${JSON.stringify(config)}`,
      );
    });
  });
});
