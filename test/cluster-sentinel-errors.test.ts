/**
 * The connections ioredis opens to Redis Sentinel itself keep an error
 * listener on the connection and on each of its sockets for their whole life
 * (broker/cluster/redis-streams.ts guardSentinels): the short-lived ones that
 * ask for the master, and the failover detector's (an ioredis option wasmq
 * leaves off; covered all the same, checked here with it on). A real
 * redis-server in sentinel mode sits behind the resetting proxy of
 * cluster-redis-errors: its connections are reset, and every new one refused
 * for a while, also while the node's Redis connections must ask it for the
 * master again. The node stays up, prints no "[ioredis] Unhandled error
 * event", logs each outage once, and comes back.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { Redis } from "ioredis";
import { parseRawConfig, resolveConfig } from "../broker/config.js";
import { RedisLink } from "../broker/cluster/redis-link.js";
import { connectCollecting, end, freePort, scratchDir, subscribe } from "./helpers.js";
import { startNode, startRedis, stopAllNodes, waitFor, type RedisServer } from "./cluster-support.js";
import { ResetProxy } from "./reset-proxy.js";

const GROUP = "wasmqsentinel";
const BURSTS = 3;

interface Sentinel {
  port: number;
  stop(): Promise<void>;
}

async function startSentinel(master: RedisServer): Promise<Sentinel> {
  const dir = scratchDir();
  const port = await freePort();
  const conf = join(dir, "sentinel.conf");
  writeFileSync(conf, [`port ${port}`, "bind 127.0.0.1", `dir ${dir}`, `sentinel monitor ${GROUP} 127.0.0.1 ${master.port} 1`, `sentinel down-after-milliseconds ${GROUP} 5000`, ""].join("\n"));
  const child: ChildProcess = spawn("redis-server", [conf, "--sentinel"], { stdio: "ignore" });
  const { Redis } = await import("ioredis");
  const ask = new Redis({ port, host: "127.0.0.1", retryStrategy: () => 100, enableOfflineQueue: false, lazyConnect: true }); // a call while the sentinel is unreachable is refused (not yet), never queued forever
  ask.on("error", () => {});
  try {
    await ask.connect().catch(() => {});
    await waitFor(async () => ((await ask.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", GROUP)) as string[] | null)?.[1] === String(master.port), "the sentinel to know the master");
  } finally {
    ask.disconnect();
  }
  return {
    port,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await once(child, "exit");
    },
  };
}

interface SentinelInternals {
  connector: {
    failoverDetector: { sentinels: { client: Redis }[] } | null;
    connectToSentinel(endpoint: { host: string; port: number }): Redis;
  };
}

describe("Redis Sentinel connection errors", () => {
  after(stopAllNodes);

  test("sentinels reset and refused, also while the node asks them for the master again: no crash, no log flood, back up", async (t) => {
    const master = await startRedis();
    const sentinel = await startSentinel(master);
    const proxy = await new ResetProxy(sentinel.port).start();
    try {
      const node = await startNode(`redis://${GROUP}`, "s1", { cluster: { sentinels: [`127.0.0.1:${proxy.port}`], heartbeatMs: 300, willDelayMs: 5000 } });
      const linkUp = async () => (await node.api<{ redis: { state: string } }>("/cluster")).body.redis?.state === "up";
      await waitFor(linkUp, "the link up through the sentinel");
      const admin = master.client();
      for (let burst = 0; burst < BURSTS; burst++) {
        // The failover detector's connections are reset; while new ones are refused, the node's
        // Redis connections are cut too and must ask the (unreachable) sentinel for the master.
        const refusing = proxy.resetAll(1500);
        await admin.client("KILL", "TYPE", "normal", "SKIPME", "yes");
        await refusing;
        await waitFor(linkUp, `the link back after burst ${burst + 1}`);
      }
      const log = node.log();
      assert.equal(node.child.exitCode, null, log.slice(-4000));
      assert.equal(node.child.signalCode, null, log.slice(-4000));
      assert.doesNotMatch(log, /Unhandled error event|Unhandled 'error' event|uncaught/i);
      const lost = log.split("\n").filter((l) => l.includes("Redis link lost"));
      assert.ok(lost.length >= 1 && lost.length <= BURSTS, `${lost.length} "link lost" lines for ${BURSTS} bursts:\n${lost.join("\n")}`);
      t.diagnostic(`${lost.length} outage line(s) for ${BURSTS} bursts: ${lost.map((l) => JSON.parse(l).err).join(" | ")}`);
      // Still serving, through the master the sentinel names.
      const sub = await connectCollecting(node.url, { clientId: "after-resets" });
      await subscribe(sub.client, "sentinel/#", 1);
      await sub.client.publishAsync("sentinel/after", "x", { qos: 1 });
      await waitFor(() => sub.got.messages.length === 1, "a message after the resets");
      await end(sub.client);
      await node.stop();
    } finally {
      await proxy.close();
      await sentinel.stop();
      await master.stop();
    }
  });

  test("a second 'error' on a sentinel connection's socket is handled (failover detector and master lookup)", async () => {
    const master = await startRedis();
    const sentinel = await startSentinel(master);
    const config = resolveConfig(parseRawConfig({ cluster: { redis: `redis://${GROUP}`, sentinels: [`127.0.0.1:${sentinel.port}`] } }, "t.json"), null).cluster!;
    const link = new RedisLink(config);
    try {
      // ioredis' failover detector, off in wasmq's options (redis-streams.ts says why), on here to reach its connections.
      const conn = link.connect("sentinel-twice", { failoverDetector: true });
      await once(conn, "ready");
      const connector = (conn as unknown as SentinelInternals).connector;
      await waitFor(() => (connector.failoverDetector?.sentinels[0]?.client.status ?? "") === "ready", "the failover detector's sentinel connection");
      const detector = connector.failoverDetector!.sentinels[0]!.client;
      const lookup = connector.connectToSentinel({ host: "127.0.0.1", port: sentinel.port });
      await waitFor(() => lookup.status === "ready" || lookup.status === "connect", "a master-lookup connection");
      for (const [name, client] of [
        ["detector", detector],
        ["lookup", lookup],
      ] as const) {
        const socket = (client as unknown as { stream: Socket }).stream;
        socket.emit("error", Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
        // Without a lasting listener this emit throws the error (an uncaught exception in a broker).
        socket.emit("error", new Error(`a second error on the ${name} socket`));
        assert.equal(link.status().lastError, `a second error on the ${name} socket`);
      }
      lookup.disconnect();
      conn.disconnect(); // quit() (link.close) does not end the failover detector's connections; disconnect() does
    } finally {
      await link.close();
      await sentinel.stop();
      await master.stop();
    }
  });
});
