/**
 * Issue #13, plugins in a cluster: plugin KV state in Redis (same API and
 * namespaces; a write on one node is read on another once its notice has
 * arrived), and rollout — `wasmq admin deploy` on one node runs the build on
 * every node, a bad build is refused everywhere, rollback, a node that joins
 * later loads the deployed set. The probe fixture counts publishes on count/#
 * in its KV namespace and answers a publish on count-report with its count.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildFixture } from "./fixtures.js";
import { collect, connect, connectCollecting, end, settle, subscribe, tempDir, wasm } from "./helpers.js";
import { runCli, startNode, startRedis, stopAllNodes, waitFor, type Node, type RedisServer } from "./cluster-support.js";

async function report(node: Node): Promise<number> {
  const sub = await connect(node.url);
  const got = collect(sub);
  await subscribe(sub, "count-report", 1);
  const pub = await connect(node.url);
  await pub.publishAsync("count-report", "?", { qos: 1 });
  const [m] = await got.waitFor(1);
  await end(sub, pub);
  return Number.parseFloat(m!.payload.toString());
}

async function count(node: Node, n: number): Promise<void> {
  const pub = await connect(node.url);
  for (let i = 0; i < n; i++) await pub.publishAsync(`count/${i}`, "tick", { qos: 1 });
  await settle(pub);
  await end(pub);
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
/** The same module with a custom section appended: valid, different digest. */
function variant(bytes: Buffer, tag: string): Buffer {
  const name = Buffer.from(tag);
  return Buffer.concat([bytes, Buffer.from([0, name.length + 1, name.length]), name]);
}

describe("plugins in a cluster", () => {
  let redis: RedisServer;
  let probe: string;
  let a: Node, b: Node;
  const dir = tempDir();
  const plugins = () => [{ name: "counter", wasm: probe }];
  before(async () => {
    probe = await buildFixture("probe");
    redis = await startRedis();
    [a, b] = await Promise.all(["a", "b"].map((id) => startNode(redis, id, { config: { plugins: plugins() } })));
  });
  after(async () => {
    await stopAllNodes();
    await redis.stop();
  });

  test("KV state is shared: a count kept on one node is read and continued on the other", async () => {
    assert.equal(await report(a), 0);
    await count(a, 3);
    assert.equal(await report(a), 3, "read-your-writes on the writing node");
    await waitFor(async () => (await report(b)) === 3, "node b to read node a's count");
    await count(b, 2);
    await waitFor(async () => (await report(a)) === 5, "node a to read node b's writes");
    // Stored in Redis under the plugin's namespace (its configured name).
    const stored = await redis.client().hgetBuffer("wasmq:kv:counter", "count");
    assert.equal(stored?.readDoubleLE(0), 5);
  });

  test("a node that starts later loads the KV state from Redis", async () => {
    const late = await startNode(redis, "late-kv", { config: { plugins: plugins() } });
    assert.equal(await report(late), 5);
    await late.stop();
  });

  test("deploy on one node runs the build on every node; a bad build is refused everywhere; rollback; a later node loads the current set", async () => {
    const original = readFileSync(probe);
    const next = variant(original, "v2");
    const nextFile = join(dir, "probe-v2.wasm");
    writeFileSync(nextFile, next);
    const deployed = await runCli(["admin", "deploy", "counter", nextFile, "--url", a.admin]);
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.match(deployed.stdout, new RegExp(`deployed to every node .*sha256 ${sha(next)}`));
    const runs = async (n: Node) => (await n.api<{ sha256: string }>("/plugins/counter")).body.sha256;
    await waitFor(async () => (await runs(b)) === sha(next), "node b to run the deployed build");
    assert.equal(await runs(a), sha(next));
    await waitFor(async () => {
      const view = await b.api<{ nodes: { id: string; state: string; plugins?: Record<string, string> }[]; deployed: Record<string, string> }>("/cluster");
      const up = view.body.nodes.filter((n) => n.state === "up");
      return view.body.deployed.counter === sha(next) && up.length === 2 && up.every((n) => n.plugins?.counter === sha(next));
    }, "GET /cluster to show the digest on every node");
    assert.equal(await report(b), 5, "the plugin's state survived the swap");

    const badFile = join(dir, "bad.wasm");
    writeFileSync(badFile, Buffer.from("\0asm\x01\0\0\0 this is not a module"));
    const refused = await runCli(["admin", "deploy", "counter", badFile, "--url", b.admin]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refused: .*the previous build keeps running on every node \(HTTP 422\)/);
    assert.equal(await runs(a), sha(next));
    assert.equal(await runs(b), sha(next));
    assert.equal((await a.api<{ deployed: Record<string, string> }>("/cluster")).body.deployed.counter, sha(next));

    const third = variant(original, "v3");
    const thirdFile = join(dir, "probe-v3.wasm");
    writeFileSync(thirdFile, third);
    assert.equal((await runCli(["admin", "deploy", "counter", thirdFile, "--url", b.admin])).code, 0);
    await waitFor(async () => (await runs(a)) === sha(third), "node a to run v3");
    const back = await runCli(["admin", "rollback", "counter", "--url", a.admin]);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, new RegExp(`rolled back on every node to sha256 ${sha(next)}`));
    await waitFor(async () => (await runs(b)) === sha(next) && (await runs(a)) === sha(next), "both nodes back on v2");

    // Configured with the original file, a new node runs what the cluster deployed.
    const late = await startNode(redis, "late", { config: { plugins: plugins() } });
    await waitFor(async () => (await runs(late)) === sha(next), "the later node to load the deployed build");
    const table = await runCli(["admin", "cluster", "--url", late.admin]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`late \\*\\s+up\\s+\\d+\\s+up\\s+mqtt://\\S+\\s+${sha(next).slice(0, 12)}`));
    await late.stop();
  });

  test("the persist hook's TTLs hold in Redis: an expired retained message and an expired queued message are gone", async () => {
    const config = { retain: [{ topic: "tmp/#", ttlSec: 1 }], retainOthers: true, queue: [{ topic: "q/#", ttlSec: 1 }] };
    const node = await startNode(redis, "ttl", { config: { plugins: [{ name: "retention", wasm: wasm("retention"), config }] } });
    const sleeper = await connect(node.url, { clientId: "sleeper", clean: false });
    await subscribe(sleeper, ["q/#", "keepq/#"], 1);
    await end(sleeper);
    const pub = await connect(node.url);
    await pub.publishAsync("tmp/x", "short", { qos: 1, retain: true });
    await pub.publishAsync("keep/x", "long", { qos: 1, retain: true });
    await pub.publishAsync("q/x", "stale", { qos: 1 });
    await pub.publishAsync("keepq/x", "fresh", { qos: 1 });
    await end(pub);
    const db = redis.client();
    assert.equal(await db.hexists("retained", "tmp/x"), 1);
    // The retained sweep runs every 5 s.
    await waitFor(async () => (await db.hexists("retained", "tmp/x")) === 0, "the expired retained message to be swept", 20_000);
    assert.equal(await db.hexists("retained", "keep/x"), 1);
    const { client, got } = await connectCollecting(node.url, { clientId: "sleeper", clean: false });
    await settle(client);
    assert.deepEqual(got.messages.map((m) => m.payload.toString()), ["fresh"]);
    await end(client);
    await node.stop();
  });
});
