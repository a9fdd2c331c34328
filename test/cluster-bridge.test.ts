/**
 * A bridge on a cluster node: sessions live in Redis, but the bridge's
 * outbound queue belongs to the node that acknowledged the messages, so it is
 * kept in that node's local LMDB (data dir/bridges) and survives its kill -9.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect, end, freePort, tempDir } from "./helpers.js";
import { startNode, startRedis, stopAllNodes, type RedisServer } from "./cluster-support.js";

interface BridgeView {
  name: string;
  queue: { messages: number };
}

describe("a bridge on a cluster node", { timeout: 120_000 }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await stopAllNodes();
    await redis.stop();
  });

  test("acknowledged messages queued for a down upstream survive kill -9 of the node", async () => {
    const upstreamNobodyListens = await freePort();
    const dataDir = tempDir("wasmq-cluster-bridge-");
    const opts = {
      dataDir,
      config: { bridges: [{ name: "cloud", url: `mqtt://127.0.0.1:${upstreamNobodyListens}`, clientId: "edge-up", out: [{ topic: "sensors/#", qos: 1 }] }] },
    };
    const node = await startNode(redis, "edge-a", opts);
    const device = await connect(node.url, { clientId: "device-1" });
    for (let i = 0; i < 20; i++) await device.publishAsync(`sensors/${i}`, `reading ${i}`, { qos: 1 });
    await end(device);
    const before = await node.api<{ bridges: BridgeView[] }>("/bridges");
    assert.equal(before.body.bridges[0]!.queue.messages, 20);

    await node.kill9();
    const again = await startNode(redis, "edge-a", opts);
    const after = await again.api<{ bridges: BridgeView[] }>("/bridges");
    assert.equal(after.body.bridges[0]!.name, "cloud");
    assert.equal(after.body.bridges[0]!.queue.messages, 20, "every acknowledged message is still queued");
    await again.stop();
  });
});
