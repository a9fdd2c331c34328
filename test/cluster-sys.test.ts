/**
 * Issue #13, $SYS in cluster mode: retained messages are shared by the
 * cluster, so each node publishes its Mosquitto-style figures under its own
 * subtree ($SYS/broker/nodes/<id>/...) instead of overwriting the others'
 * $SYS/broker/..., and one node publishes the cluster-wide sums under
 * $SYS/broker/cluster/.... Real redis-server, two broker processes.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect, connectCollecting, end, subscribe } from "./helpers.js";
import { startNode, startRedis, stopAllNodes, waitFor, type Node, type RedisServer } from "./cluster-support.js";

describe("$SYS in cluster mode", () => {
  let redis: RedisServer;
  let a: Node, b: Node;
  before(async () => {
    redis = await startRedis();
    [a, b] = await Promise.all(["a", "b"].map((id) => startNode(redis, id, { config: { sys: { intervalSec: 1 } } })));
  });
  after(async () => {
    await stopAllNodes();
    await redis.stop();
  });

  test("each node has its own subtree; the cluster sums are the sums of the nodes' figures; no shared single-node topics", async () => {
    const others = await Promise.all([connect(b.url), connect(b.url)]);
    const watcher = await connectCollecting(a.url, {});
    await subscribe(watcher.client, "$SYS/broker/#", 0);
    const latest = (topic: string) => watcher.got.messages.filter((m) => m.topic === topic).at(-1)?.payload.toString();
    await waitFor(
      () => latest("$SYS/broker/nodes/a/clients/connected") === "1" && latest("$SYS/broker/nodes/b/clients/connected") === "2" && latest("$SYS/broker/cluster/clients/connected") === "3",
      "per-node clients/connected 1 and 2, cluster sum 3",
      20_000,
    );
    assert.match(latest("$SYS/broker/nodes/a/version") ?? "", /^wasmq version /);
    assert.match(latest("$SYS/broker/nodes/b/uptime") ?? "", /^\d+ seconds$/);
    assert.equal(latest("$SYS/broker/cluster/nodes"), "2");
    // Figures published under the single-node names would be whichever node wrote last.
    const plain = watcher.got.messages.filter((m) => /^\$SYS\/broker\/(clients|messages|bytes|uptime|version)/.test(m.topic));
    assert.deepEqual(plain.map((m) => m.topic), []);
    // A counter sum: messages received by both nodes.
    await waitFor(() => {
      const sum = Number(latest("$SYS/broker/nodes/a/messages/received")) + Number(latest("$SYS/broker/nodes/b/messages/received"));
      return Number.isFinite(sum) && latest("$SYS/broker/cluster/messages/received") === String(sum);
    }, "the cluster's messages/received equal to the nodes' sum", 20_000);
    await end(watcher.client, ...others);
  });
});
