// Issue #11: plugin output is validated like client input. A hostile plugin
// rewrites topics into $SYS/, to wildcards, past maxTopicLength, to ill-formed
// UTF-8; rewrites payloads past maxPacketSize; injects such messages; floods
// the log. Each is refused at the host call (trap kind "invalid-output" or
// "host-limit"), logged, counted, answered by the plugin's failure policy —
// and never reaches a subscriber.
//
// How "never delivered" is shown without timing: each offending message is
// followed by a sentinel from the same publisher on the same connection; a
// subscriber to everything ("#" and "$SYS/#") receives messages of one
// publisher in order, so once the sentinel is in, anything before it would be.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MemoryKvStore, PluginChain, emptyMessage, type TrapKind } from "../host/index.js";
import { buildFixture } from "./fixtures.js";
import { parseRawConfig } from "../broker/config.js";
import { collect, connect, end, startTestBroker, subscribe, type TestBroker } from "./helpers.js";
import type { MqttClient } from "mqtt";
import { fileURLToPath } from "node:url";

const MAX_PACKET = 64 * 1024;

interface Trap {
  hook: string;
  kind: TrapKind;
  message: string;
}

for (const onError of ["fail-closed", "fail-open"] as const) {
  describe(`plugin output is validated like client input (${onError})`, { timeout: 60_000 }, () => {
    let broker: TestBroker;
    let traps: Trap[];
    let publisher: MqttClient;
    let watcher: MqttClient;
    let got: ReturnType<typeof collect>;
    let sentinels = 0;

    before(async () => {
      broker = await startTestBroker({
        persistence: "memory",
        ws: false,
        limits: { maxPacketSize: MAX_PACKET, maxTopicLength: 4096 },
        metrics: { port: 0 },
        plugins: [
          {
            name: "hostile",
            wasm: await buildFixture("hostile"),
            onError,
            watch: false,
            config: { bigPayload: 100_000, longTopic: 5000 },
            breaker: { failures: 100_000, windowMs: 1000, cooldownMs: 1000 },
          },
        ],
      });
      traps = [];
      broker.chain.on("trap", (_plugin, hook, kind, error) => traps.push({ hook, kind, message: (error as Error).message }));
      watcher = await connect(broker.url, { clientId: "watcher" });
      got = collect(watcher);
      await subscribe(watcher, ["#", "$SYS/#"], 1);
      publisher = await connect(broker.url, { clientId: "publisher" });
    });
    after(async () => {
      await end(publisher, watcher);
      await broker.stop();
    });

    /** Publish the offending message, then a sentinel; returns what the watcher got in between. */
    async function offend(topic: string, payload = "x"): Promise<{ topic: string; size: number }[]> {
      const start = got.messages.length;
      await publisher.publishAsync(topic, payload, { qos: 1 });
      const sentinel = `sentinel/${++sentinels}`;
      await publisher.publishAsync(sentinel, "s", { qos: 1 });
      await got.waitFor(start + 1, 10_000);
      while (!got.messages.slice(start).some((m) => m.topic === sentinel)) await got.waitFor(got.messages.length + 1, 10_000);
      return got.messages
        .slice(start)
        .filter((m) => m.topic !== sentinel)
        .map((m) => ({ topic: m.topic, size: m.payload.length }));
    }

    function lastTrap(): Trap {
      const t = traps.at(-1);
      assert.ok(t, "the plugin trapped");
      return t;
    }

    /** Under fail-open the original message goes on unchanged; under fail-closed it is dropped. */
    function expectPolicy(seen: { topic: string }[], original: string): void {
      assert.deepEqual(
        seen.map((m) => m.topic),
        onError === "fail-open" ? [original] : [],
      );
    }

    const cases: [string, RegExp][] = [
      ["out/sys", /reserved for the broker/],
      ["out/wild", /not a valid topic name/],
      ["out/long", /exceeds maxTopicLength \(4096\)/],
      ["out/deep", /151 levels exceeds maxTopicLevels \(100\)/],
      ["out/big", new RegExp(`exceeds maxPacketSize \\(${MAX_PACKET}\\)`)],
      ["out/utf8", /not well-formed UTF-8/],
      ["out/combo", /a PUBLISH of 66\d\d\d bytes exceeds maxPacketSize/],
      ["out/inject-sys", /reserved for the broker/],
      ["out/inject-wild", /not a valid topic name/],
      ["out/inject-big", /exceeds maxPacketSize/],
    ];
    for (const [topic, why] of cases) {
      test(`${topic}: refused as invalid-output, logged, counted, never delivered`, async () => {
        const before = broker.chain.slot("hostile")!.stats.traps["invalid-output"] ?? 0;
        const seen = await offend(topic);
        assert.ok(!seen.some((m) => m.topic.startsWith("$SYS") || m.topic.includes("+") || m.topic.startsWith("long/") || m.topic.startsWith("deep/") || m.topic.startsWith("combo/") || m.topic.startsWith("injected/")), JSON.stringify(seen));
        assert.ok(!seen.some((m) => m.size > MAX_PACKET), "no oversized payload went out");
        expectPolicy(seen, topic);
        const trap = lastTrap();
        assert.equal(trap.kind, "invalid-output");
        assert.equal(trap.hook, "publish");
        assert.match(trap.message, why);
        assert.equal(broker.chain.slot("hostile")!.stats.traps["invalid-output"], before + 1);
      });
    }

    test("valid rewrites and injected publishes still go out", async () => {
      const seen = await offend("ok/rewrite");
      assert.deepEqual(seen.map((m) => m.topic), ["rewritten/ok"]);
      const routed = await offend("ok/route");
      assert.deepEqual(routed.map((m) => m.topic).sort(), ["ok/route", "routed/ok"]);
    });

    test("deliver hook: a rewrite into $SYS/ or to a wildcard is refused per subscriber", async () => {
      for (const topic of ["deliver/sys", "deliver/wild"]) {
        const n = traps.length;
        const seen = await offend(topic);
        expectPolicy(seen, topic);
        assert.ok(traps.slice(n).some((t) => t.hook === "deliver" && t.kind === "invalid-output"));
      }
    });

    test("subscribe hook: a filter may be rewritten to a filter, not to an invalid one", async () => {
      const client = await connect(broker.url, { clientId: `sub-${onError}` });
      try {
        assert.deepEqual(await subscribe(client, "alias/wild", 0), [0]);
        const granted = await subscribe(client, "alias/bad", 0);
        // fail-closed refuses the subscription (SUBACK 0x80); fail-open keeps the client's own filter.
        assert.deepEqual(granted, onError === "fail-closed" ? [128] : [0]);
        const trap = lastTrap();
        assert.equal(trap.hook, "subscribe");
        assert.equal(trap.kind, "invalid-output");
        assert.match(trap.message, /not a valid topic filter/);
      } finally {
        await end(client);
      }
    });

    test("log flood: the line cap traps (host-limit), the broker keeps serving", async () => {
      const seen = await offend("flood/log");
      expectPolicy(seen, "flood/log");
      const trap = lastTrap();
      assert.equal(trap.kind, "host-limit");
      assert.match(trap.message, /more than 32 log lines in one call \(limits\.maxLogLinesPerCall\)/);
      assert.ok(publisher.connected && watcher.connected);
    });

    test("the metrics count refusals by kind", async () => {
      const text = await (await fetch(`${broker.admin!.url}/metrics`)).text();
      const count = (kind: string) => Number(new RegExp(`wasmq_plugin_traps_total\\{plugin="hostile",kind="${kind}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
      const stats = broker.chain.slot("hostile")!.stats.traps;
      assert.ok(count("invalid-output") >= cases.length, text.split("\n").filter((l) => l.includes("traps_total")).join("\n"));
      assert.equal(count("invalid-output"), stats["invalid-output"]);
      assert.equal(count("host-limit"), stats["host-limit"]);
      assert.ok(count("host-limit") >= 1);
    });
  });
}

describe("repeated cap violations open the breaker like any trap", () => {
  test("three log floods with breaker.failures 3", async () => {
    const chain = await PluginChain.load(
      [{ name: "hostile", wasm: await buildFixture("hostile"), onError: "fail-open", breaker: { failures: 3, windowMs: 60_000, cooldownMs: 60_000 } }],
      { kv: new MemoryKvStore(), publish: () => {} },
    );
    try {
      const kinds: string[] = [];
      chain.on("trap", (_p, _h, kind) => kinds.push(kind));
      for (let i = 0; i < 3; i++) {
        const msg = emptyMessage();
        msg.topic = "flood/log";
        assert.equal(chain.run("publish", msg).verdict, 0, "fail-open lets the message through");
      }
      assert.deepEqual(kinds, ["host-limit", "host-limit", "host-limit"]);
      assert.equal(chain.slot("hostile")!.breakerState, "open");
    } finally {
      chain.close();
    }
  });
});

describe("native plugins get the same caps and output checks (no fuel)", () => {
  const nativeFixture = fileURLToPath(new URL("./fixtures/hostile-native.js", import.meta.url));
  let chain: PluginChain;
  const traps: { kind: TrapKind; message: string }[] = [];
  const published: string[] = [];
  before(async () => {
    chain = await PluginChain.load([{ name: "hostile-native", native: nativeFixture, onError: "fail-closed", breaker: { failures: 100_000 } }], {
      kv: new MemoryKvStore(),
      publish: (m) => published.push(m.topic),
      output: { maxTopicLength: 4096, maxTopicLevels: 100, maxPacketSize: MAX_PACKET, reservedTopicPrefixes: ["$SYS"] },
    });
    chain.on("trap", (_p, _h, kind, err) => traps.push({ kind, message: (err as Error).message }));
  });
  after(() => chain.close());

  // A native instance restarts asynchronously (a fresh module import) after a trap.
  const ready = async () => {
    while (!chain.slot("hostile-native")!.ready) await new Promise((r) => setTimeout(r, 5));
  };
  const run = (topic: string) => {
    const msg = emptyMessage();
    msg.topic = topic;
    msg.payload = Buffer.from("x");
    return { out: chain.run("publish", msg), msg };
  };

  for (const [topic, kind, why] of [
    ["flood/publish", "host-limit", /more than 100 messages in one call \(limits\.maxPublishesPerCall\)/],
    ["flood/log", "host-limit", /more than 32 log lines/],
    ["out/sys", "invalid-output", /reserved for the broker/],
    ["out/wild", "invalid-output", /not a valid topic name/],
    ["out/long", "invalid-output", /maxTopicLength/],
    ["out/big", "invalid-output", /maxPacketSize/],
    ["out/inject-sys", "invalid-output", /reserved for the broker/],
  ] as const) {
    test(`${topic}: ${kind}`, async () => {
      await ready();
      const n = traps.length;
      const { out, msg } = run(topic);
      assert.equal(out.verdict, 1, "fail-closed drops the message");
      assert.equal(msg.topic, topic, "the message was not changed");
      assert.equal(traps.length, n + 1);
      assert.equal(traps[n]!.kind, kind);
      assert.match(traps[n]!.message, why);
      assert.ok(!published.some((t) => t !== "routed/ok"), `nothing invalid was published: ${published.join(", ")}`);
    });
  }

  test("valid output passes", async () => {
    await ready();
    const { out, msg } = run("ok/rewrite");
    assert.equal(out.verdict, 0);
    assert.equal(msg.topic, "rewritten/ok");
    run("ok/route");
    assert.deepEqual(published, ["routed/ok"]);
  });
});

describe("plugin limits: bad host-call caps are refused naming the key", () => {
  test("a negative maxPublishesPerCall", async () => {
    const wasm = await buildFixture("hostile");
    await assert.rejects(
      PluginChain.load([{ name: "h", wasm, limits: { maxPublishesPerCall: -1 } }], { kv: new MemoryKvStore(), publish: () => {} }),
      /plugin "h": refused: limits\.maxPublishesPerCall must be a non-negative integer, got -1/,
    );
  });
  test("the broker config refuses a bad cap naming the key and the file", () => {
    assert.throws(
      () => parseRawConfig({ plugins: [{ name: "h", wasm: "h.wasm", limits: { maxLogLinesPerCall: 1.5 } }] }, "conf.json"),
      (err: Error) => /conf\.json/.test(err.message) && /plugins\.0\.limits\.maxLogLinesPerCall/.test(err.message),
    );
  });
});
