/**
 * examples/edge-to-cloud: the edge and cloud configs as written (ports, data
 * dirs and the bridge's URL pointed at the test's cloud; the aggregate window
 * shortened from 60 s to 1 s so the test does not wait a minute), devices from
 * the simulator at the edge: per-window averages reach the cloud under
 * site1/stats/..., raw readings never do, and a cloud command reaches an edge
 * subscriber.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { pino } from "pino";
import { loadConfig } from "../broker/config.js";
import { startBroker } from "../broker/server.js";
import { until } from "./bridge-support.js";
import { connectCollecting, end, ROOT, subscribe, tempDir } from "./helpers.js";

const EXAMPLE = join(ROOT, "examples/edge-to-cloud");
const dir = tempDir("wasmq-edge-to-cloud-");
after(() => rmSync(dir, { recursive: true, force: true }));
const logger = () => pino({ level: process.env.WASMQ_TEST_LOG ?? "silent" });

test("edge-to-cloud: only the aggregate's averages cross the bridge; commands come back", async () => {
  const cloud = await startBroker(loadConfig(join(EXAMPLE, "cloud.json"), { port: 0, data: join(dir, "cloud") }), { logger: logger() });
  const edgeConfig = loadConfig(join(EXAMPLE, "edge.json"), { port: 0, data: join(dir, "edge"), metricsPort: 0 });
  assert.deepEqual(edgeConfig.bridges[0]!.out, [{ topic: "stats/#", qos: 1, localPrefix: "", remotePrefix: "site1/" }]);
  edgeConfig.bridges[0]!.urls = [`mqtt://127.0.0.1:${cloud.port("tcp")}`];
  edgeConfig.plugins[0]!.config = { ...edgeConfig.plugins[0]!.config, intervalSec: 1 };
  const edge = await startBroker(edgeConfig, { logger: logger() });
  const cloudUrl = `mqtt://127.0.0.1:${cloud.port("tcp")}`;
  const edgeUrl = `mqtt://127.0.0.1:${edge.port("tcp")}`;
  const watcher = await connectCollecting(cloudUrl, { clientId: "cloud-watcher" });
  const device = await connectCollecting(edgeUrl, { clientId: "edge-device" });
  try {
    await subscribe(watcher.client, "site1/#", 1);
    await subscribe(device.client, "commands/#", 1);
    await until("bridge connected", () => cloud.aedes.connectedClients >= 2);
    const sim = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(process.execPath, [join(ROOT, "dist/examples/simulator.js"), "--url", edgeUrl, "--devices", "3", "--rate", "5", "--duration", "3", "--seed", "7", "--json"], (err, stdout) =>
        resolve({ code: err ? 1 : 0, out: stdout }),
      ),
    );
    assert.equal(sim.code, 0, sim.out);
    await until("averages in the cloud", () => watcher.got.messages.some((m) => m.topic.startsWith("site1/stats/sensors/") && m.topic.endsWith("/temp")));
    for (const m of watcher.got.messages) {
      assert.match(m.topic, /^site1\/stats\/sensors\/[^/]+\/(temp|humidity)$/, "only statistics cross");
      const body = JSON.parse(m.payload.toString()) as { count: number; mean: number };
      assert.ok(body.count >= 1 && Number.isFinite(body.mean));
    }
    // A command from the cloud reaches the device at the edge.
    for (let i = 0; !device.got.messages.some((m) => m.topic === "commands/dev-1/reboot") && i < 200; i++) {
      await watcher.client.publishAsync("site1/commands/dev-1/reboot", "now", { qos: 1 });
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(device.got.messages.some((m) => m.topic === "commands/dev-1/reboot" && m.payload.toString() === "now"));
  } finally {
    await end(watcher.client, device.client);
    await edge.close();
    await cloud.close();
  }
});
