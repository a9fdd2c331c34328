// Plugins in C and Rust on the same ABI: examples/c-plugin and
// examples/rust-plugin (the acl plugin) are compiled here with Debian's clang/lld
// and rustc — a missing compiler fails this suite, never skips it — then run
// next to the AssemblyScript build and the native twin on generated messages
// (every result identical), loaded by a broker with real clients, and metered
// and capped by the same loader.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runPlugin, type HarnessMessage, type HarnessResult } from "../host/harness.js";
import { buildC, buildRust } from "../examples/build.js";
import { inspectFile } from "../host/tools/plugin-cli.js";
import { ACL_CONFIG, ACL_LIMITS, aclMessages } from "./acl-messages.js";
import { Rng, verdictCounts, withoutManifest } from "./differential.js";
import { collect, connect, end, native, settle, startTestBroker, subscribe, type TestBroker } from "./helpers.js";

const BUILDS = { c: "", rust: "" };

/** A config drawn from the reference rules: a random subset, in random order, with random defaults. */
function randomConfig(seed: number): Record<string, unknown> {
  const rng = new Rng(seed);
  const rules = ACL_CONFIG.rules.filter(() => rng.chance(0.7));
  for (let i = rules.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [rules[i], rules[j]] = [rules[j]!, rules[i]!];
  }
  return { default: rng.pick(["allow", "deny"]), onDeniedPublish: rng.pick(["drop", "disconnect"]), rules };
}

/**
 * Every reference rule's filter made concrete: '+' and '#' replaced by a few
 * levels, %u/%c by the sender's identity or another — each sent through every
 * hook by a few identities, so each rule is exercised at and around its edges.
 */
function ruleTopics(): HarnessMessage[] {
  const identities = [["dev-1", "ops"], ["gateway", "alice"], ["dev-2", null]] as const;
  const out: HarnessMessage[] = [];
  for (const rule of ACL_CONFIG.rules) {
    for (const [clientId, username] of identities) {
      for (const plus of ["x", "", "dev-1"]) {
        for (const hash of ["", "/x", "/x/y"]) {
          const level = rule.topic.replaceAll("%u", username ?? "nobody").replaceAll("%c", clientId).replaceAll("+", plus);
          const topic = level.endsWith("/#") ? level.slice(0, -2) + hash : level.replace("#", `x${hash}`);
          for (const hook of ["publish", "deliver", "subscribe"] as const) out.push({ hook, topic, clientId, username, peer: "publisher" });
        }
      }
    }
  }
  return out;
}

/** Topics beginning with '$', which a filter starting with a wildcard must not match [MQTT-4.7.2-1]. */
function dollarTopics(): HarnessMessage[] {
  const out: HarnessMessage[] = [];
  for (const hook of ["publish", "deliver", "subscribe"] as const) {
    for (const topic of ["$SYS/broker/uptime", "$SYS", "$x/devices/dev-1/status", "$SYS/#", "$SYS/+/x"]) {
      for (const [clientId, username] of [["dev-1", "ops"], ["gateway", null], ["$SYS", "alice"]] as const) out.push({ hook, topic, clientId, username, peer: "publisher" });
    }
  }
  return out;
}

describe("plugins in C and Rust", { timeout: 180_000 }, () => {
  before(() => {
    BUILDS.c = buildC();
    BUILDS.rust = buildRust();
  });

  test("inspect: each build declares ABI 1, the acl hooks, its manifest, and imports nothing but memory and log", () => {
    for (const [language, file] of Object.entries(BUILDS)) {
      const report = inspectFile(file);
      assert.equal(report.abiVersion, 1, language);
      assert.deepEqual(report.hooks, ["subscribe", "publish", "deliver"], language);
      assert.equal((report.manifest as { name: string }).name, `acl-${language}`);
      assert.deepEqual(report.imports.map((i) => i.split(" ")[0]).sort(), ["env.memory", "wasmq.log"], language);
    }
  });

  for (const seed of [31, 32, 33, 34]) {
    test(`differential, config seed ${seed}: C, Rust, AssemblyScript and native agree on 400 generated messages, '$' topics and each rule's edges`, async () => {
      const config = seed === 31 ? ACL_CONFIG : randomConfig(seed);
      const msgs = [...aclMessages(seed * 7, 400), ...dollarTopics(), ...ruleTopics()];
      const run = (spec: Parameters<typeof runPlugin>[0]) => runPlugin({ ...spec, limits: ACL_LIMITS }, msgs);
      const results: Record<string, HarnessResult[]> = {
        assemblyscript: await run({ name: "acl", wasm: withoutManifest("acl"), config }),
        native: await run({ name: "acl", native: native("acl"), config }),
        c: await run({ name: "acl", wasm: BUILDS.c, config }),
        rust: await run({ name: "acl", wasm: BUILDS.rust, config }),
      };
      for (const language of ["c", "rust", "native"]) {
        for (let i = 0; i < msgs.length; i++) {
          assert.deepEqual(results[language]![i], results.assemblyscript![i], `${language}, message ${i} ${JSON.stringify(msgs[i])}`);
        }
      }
      if (seed === 31) {
        const counts = verdictCounts(results.c!);
        for (const outcome of ["continue", "drop", "deny"]) assert.ok((counts[outcome] ?? 0) > 10, `too few ${outcome}: ${JSON.stringify(counts)}`);
      }
    });
  }

  test("metered and capped like AssemblyScript: out of fuel traps, a memory cap below the module's minimum is refused", async () => {
    for (const [language, file] of Object.entries(BUILDS)) {
      const [starved] = await runPlugin({ name: "acl", wasm: file, config: ACL_CONFIG, limits: { fuel: 20 }, onError: "fail-closed" }, [
        { hook: "publish", topic: "public/x", clientId: "dev-1" },
      ]);
      assert.equal(starved!.trap, "fuel", language);
      assert.equal(starved!.verdict, "drop", `${language}: fail-closed`);
      await assert.rejects(
        runPlugin({ name: "acl", wasm: file, config: ACL_CONFIG, limits: { memoryPages: 1 } }, []),
        /refused: it needs 2 memory pages at start but its limit \(limits\.memoryPages\) is 1/,
        language,
      );
      await assert.rejects(runPlugin({ name: "acl", wasm: file, config: { default: "perhaps" } }, []), /config key "default" must be equal to one of the allowed values/, language);
    }
  });

  for (const language of ["c", "rust"] as const) {
    describe(`the ${language} build in a broker`, () => {
      let broker: TestBroker;
      before(async () => {
        broker = await startTestBroker({
          persistence: "memory",
          // The test helpers' settle() round trip needs its own topic.
          plugins: [{ name: `acl-${language}`, wasm: BUILDS[language], config: { ...ACL_CONFIG, rules: [...ACL_CONFIG.rules, { topic: "wasmq-test/settle/#", access: "readwrite" }] } }],
        });
      });
      after(() => broker.stop());

      test("publishes are allowed and dropped by the rules, subscriptions granted and refused", async () => {
        const dev = await connect(broker.url, { clientId: "dev-1", username: "alice" });
        const ops = await connect(broker.url, { clientId: "ops-console", username: "ops" });
        const seen = collect(ops);
        assert.deepEqual(await subscribe(ops, ["#"], 1), [1]);
        assert.deepEqual(await subscribe(dev, ["devices/dev-1/#", "devices/dev-2/#", "users/alice/inbox/+", "users/bob/inbox/+", "#"], 1), [1, 128, 1, 128, 128]);
        await dev.publishAsync("devices/dev-1/status", "mine", { qos: 1 });
        await dev.publishAsync("devices/dev-2/status", "not mine", { qos: 1 });
        await dev.publishAsync("public/news", "hello", { qos: 1 });
        await seen.waitFor(2);
        await settle(ops);
        assert.deepEqual(seen.messages.map((m) => `${m.topic} ${m.payload.toString()}`).sort(), ["devices/dev-1/status mine", "public/news hello"]);
        await end(dev, ops);
      });
    });
  }
});
