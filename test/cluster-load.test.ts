/**
 * Issue #13: 1,000 clients spread over three nodes with cross traffic. Each
 * client subscribes to its own topic on its node and publishes one QoS 1
 * message to a client on the next node; every message must arrive, once.
 * Bounded for a shared 2-core machine: 1,000 connections, 1,000 messages.
 * CLUSTER_LOAD_CLIENTS=n changes the count.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import mqtt, { type MqttClient } from "mqtt";
import { end } from "./helpers.js";
import { startNode, startRedis, stopAllNodes, waitFor, type Node, type RedisServer } from "./cluster-support.js";

const CLIENTS = Number(process.env.CLUSTER_LOAD_CLIENTS ?? 1000);

describe("1,000 clients over three nodes", () => {
  let redis: RedisServer;
  let nodes: Node[];
  const clients: MqttClient[] = [];
  before(async () => {
    redis = await startRedis();
    nodes = await Promise.all(["a", "b", "c"].map((id) => startNode(redis, id)));
  });
  after(async () => {
    await end(...clients);
    await stopAllNodes();
    await redis.stop();
  });

  test("every cross-node message arrives exactly once", async () => {
    const received = new Map<number, number>();
    const nodeOf = (i: number) => nodes[i % 3]!;
    // Connect in batches of 100 so the accept queues of three processes on two cores keep up.
    for (let start = 0; start < CLIENTS; start += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, CLIENTS - start) }, async (_, k) => {
          const i = start + k;
          const client = mqtt.connect(nodeOf(i).url, { clientId: `load-${i}`, reconnectPeriod: 0, connectTimeout: 30_000 });
          clients[i] = client;
          client.on("error", () => {});
          await new Promise<void>((resolve, reject) => (client.once("connect", () => resolve()), client.once("close", () => reject(new Error(`load-${i} closed`)))));
          client.on("message", (_topic, payload) => {
            const n = Number(payload.toString());
            received.set(n, (received.get(n) ?? 0) + 1);
          });
          await client.subscribeAsync(`load/${i}`, { qos: 1 });
        }),
      );
    }
    const perNode = await Promise.all(nodes.map(async (n) => (await n.api<{ nodes: { id: string; clients: number }[] }>("/cluster")).body));
    assert.ok(perNode.length === 3);
    // Client i publishes to client i+1, which is on the next node.
    await Promise.all(clients.map((c, i) => c.publishAsync(`load/${(i + 1) % CLIENTS}`, String(i), { qos: 1 })));
    await waitFor(() => received.size === CLIENTS, `${CLIENTS} messages (got ${received.size})`, 60_000);
    assert.ok([...received.values()].every((v) => v === 1), "no duplicates");
    await waitFor(async () => {
      const view = (await nodes[0]!.api<{ nodes: { id: string; clients: number }[] }>("/cluster")).body;
      return view.nodes.reduce((s, n) => s + (n.clients ?? 0), 0) === CLIENTS;
    }, "GET /cluster to count every client");
  });
});
