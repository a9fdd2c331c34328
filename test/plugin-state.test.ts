// Plugin state (issue #4): a plugin's kv namespace on LMDB survives a hot
// reload and a broker restart, and another plugin — even the same build under
// another name — cannot see its keys. The probe fixture counts publishes on
// count/# with kv.putNumber("count") and rewrites the payload of a publish on
// "count-report" to its count, so the count is observed over MQTT.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { buildFixture } from "./fixtures.js";
import { collect, connect, end, settle, startTestBroker, subscribe, tempDir, type TestBroker } from "./helpers.js";

/** Publish on count-report and read back the payload the chain rewrote it to. */
async function report(broker: TestBroker): Promise<number> {
  const sub = await connect(broker.url);
  const got = collect(sub);
  await subscribe(sub, "count-report", 1);
  const pub = await connect(broker.url);
  await pub.publishAsync("count-report", "?", { qos: 1 });
  const [m] = await got.waitFor(1);
  await end(sub, pub);
  const count = Number.parseFloat(m!.payload.toString());
  assert.ok(Number.isFinite(count), `count-report carried ${JSON.stringify(m!.payload.toString())}`);
  return count;
}

async function countMessages(broker: TestBroker, n: number): Promise<void> {
  const pub = await connect(broker.url);
  for (let i = 0; i < n; i++) await pub.publishAsync(`count/${i}`, "tick", { qos: 1 });
  await settle(pub);
  await end(pub);
}

describe("plugin state on LMDB", () => {
  const dataDir = tempDir();
  let probe: string;
  before(async () => {
    probe = await buildFixture("probe");
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test("a count survives a hot reload and a restart, and a second plugin sees only its own keys", async () => {
    let broker = await startTestBroker({ plugins: [{ name: "counter", wasm: probe }] }, { dataDir });
    try {
      assert.equal(await report(broker), 0);
      await countMessages(broker, 3);
      assert.equal(await report(broker), 3);

      const [reload] = await broker.chain.reload("counter");
      assert.equal(reload!.ok, true, reload!.error ?? "");
      assert.equal(await report(broker), 3, "a reloaded instance reads the count from its store");
      await countMessages(broker, 2);
      assert.equal(await report(broker), 5);
      await broker.stop();

      // Same data directory; "other" runs the same build after "counter", so a
      // report shows other's count, and counter's once other is disabled.
      broker = await startTestBroker(
        {
          plugins: [
            { name: "counter", wasm: probe },
            { name: "other", wasm: probe },
          ],
        },
        { dataDir },
      );
      assert.equal(await report(broker), 0, "other cannot see counter's key");
      broker.chain.setEnabled("other", false);
      assert.equal(await report(broker), 5, "counter's count survived the restart");
      broker.chain.setEnabled("other", true);
      await countMessages(broker, 4);
      assert.equal(await report(broker), 4, "other counts in its own namespace");
      broker.chain.setEnabled("other", false);
      assert.equal(await report(broker), 9);

      // The namespaces as the host stores them.
      const key = Buffer.from("count");
      const stored = (name: string) => {
        const v = broker.persistence.kv.get(name, key);
        return v ? Buffer.from(v).readDoubleLE(0) : undefined;
      };
      assert.equal(stored("counter"), 9);
      assert.equal(stored("other"), 4);
      assert.equal(stored("nobody"), undefined);
    } finally {
      await broker.stop();
    }
  });
});
