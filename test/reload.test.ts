// Hot reload: replacing a plugin's .wasm while messages flow loses nothing; every
// message is processed by the old or the new build, never neither, never both;
// a broken replacement is refused and the old build keeps serving.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildSource } from "./fixtures.js";
import { CLI, collect, connect, end, startTestBroker, subscribe, tempDir, type TestBroker } from "./helpers.js";

const tagger = (version: string, initOk = true) => `
  import { Config, Message, Verdict } from "SDK_PATH";
  export * from "SDK_PATH/exports";
  export function init(config: Config): bool { return ${initOk}; }
  export function onPublish(msg: Message): i32 {
    if (msg.topicMatches("stream/#")) msg.setPayloadString(msg.payloadString + "|${version}");
    return Verdict.Continue;
  }`;

/** Replace a file the way build tools do: write aside, then rename over it. */
function replaceFile(target: string, source: string | Buffer, fromFile = false): void {
  const aside = `${target}.tmp-${process.pid}`;
  if (fromFile) copyFileSync(source as string, aside);
  else writeFileSync(aside, source);
  renameSync(aside, target);
}

describe("hot reload under load", () => {
  const dir = tempDir();
  const live = join(dir, "tagger.wasm");
  let v1 = "";
  let v2 = "";
  let refuses = "";
  let broker: TestBroker;

  before(async () => {
    v1 = await buildSource(tagger("v1"), join(dir, "v1.wasm"));
    v2 = await buildSource(tagger("v2"), join(dir, "v2.wasm"));
    refuses = await buildSource(tagger("v3", false), join(dir, "v3.wasm"));
    copyFileSync(v1, live);
    broker = await startTestBroker({ plugins: [{ name: "tagger", wasm: live }] });
  });
  after(() => broker.stop());

  test("a QoS 1 stream across two reloads and two refused builds: exactly once, old or new", async () => {
    const reloads: { ok: boolean; error: string | null }[] = [];
    broker.chain.on("reload", (_plugin, ok, error) => reloads.push({ ok, error }));
    const waitReloads = async (n: number) => {
      while (reloads.length < n) await new Promise((r) => setTimeout(r, 20));
    };
    const sub = await connect(broker.url, { clientId: "reload-sub" });
    const got = collect(sub);
    await subscribe(sub, "stream/#", 1);
    const pub = await connect(broker.url, { clientId: "reload-pub" });
    const total = 800;
    let sent = 0;
    // The test raises `allowed` phase by phase, so there is always traffic in
    // flight while a reload compiles, and every phase has messages on both sides.
    let allowed = 150;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const publishing = (async () => {
      const window = new Set<Promise<unknown>>();
      for (; sent < total; sent++) {
        while (sent >= allowed) await sleep(5);
        const p = pub.publishAsync(`stream/${sent}`, `m${sent}`, { qos: 1 });
        window.add(p);
        void p.finally(() => window.delete(p));
        if (window.size >= 16) await Promise.race(window);
      }
      await Promise.all(window);
    })();
    const waitSent = async (n: number) => {
      while (sent < n) await sleep(5);
    };
    const phase = async (replace: () => void, reloadsSoFar: number) => {
      await waitSent(allowed);
      replace();
      allowed += 100; // keeps flowing while the new build compiles
      await waitReloads(reloadsSoFar);
      await waitSent(allowed);
      allowed += 50; // and some after the swap for sure
    };
    await phase(() => replaceFile(live, v2, true), 1); // picked up by the file watcher
    await phase(() => replaceFile(live, Buffer.from("garbage, not wasm")), 2); // refused, v2 keeps serving
    await phase(() => replaceFile(live, refuses, true), 3); // compiles, but its init refuses: refused too
    await phase(() => replaceFile(live, v1, true), 4); // and back
    allowed = total;
    await publishing;
    await got.waitFor(total, 30_000);

    assert.deepEqual(
      reloads.map((r) => r.ok),
      [true, false, false, true],
      JSON.stringify(reloads),
    );
    assert.match(reloads[1]!.error!, /not a valid WebAssembly module/);
    assert.match(reloads[2]!.error!, /init refused/);

    const byIndex = new Map<number, string[]>();
    for (const m of got.messages) {
      const i = Number(m.topic.split("/")[1]);
      byIndex.set(i, [...(byIndex.get(i) ?? []), m.payload.toString()]);
    }
    assert.equal(byIndex.size, total, "every message arrived");
    const versions: string[] = [];
    for (let i = 0; i < total; i++) {
      const copies = byIndex.get(i)!;
      assert.equal(copies.length, 1, `message ${i} delivered exactly once`);
      const match = /^m(\d+)\|(v1|v2)$/.exec(copies[0]!);
      assert.ok(match, `message ${i} processed by exactly one build: ${copies[0]}`);
      assert.equal(Number(match[1]), i);
      versions.push(match[2]!);
    }
    // Publishes are processed in order, so the versions form v1…v2…v1 with no interleaving.
    const runs = versions.filter((v, i) => i === 0 || v !== versions[i - 1]);
    assert.deepEqual(runs, ["v1", "v2", "v1"]);
    const slot = broker.chain.slot("tagger")!;
    assert.equal(slot.stats.reloads, 2);
    assert.equal(slot.stats.reloadFailures, 2);
    await end(sub, pub);
  });
});

describe("SIGHUP reloads plugins in a running broker process", () => {
  test("the broker reloads on SIGHUP and logs it", async () => {
    const dir = tempDir();
    const live = join(dir, "tagger.wasm");
    copyFileSync(await buildSource(tagger("v1"), join(dir, "v1.wasm")), live);
    const v2 = await buildSource(tagger("v2"), join(dir, "v2.wasm"));
    const config = join(dir, "wasmq.json");
    writeFileSync(config, JSON.stringify({ port: 0, ws: false, data: join(dir, "data"), plugins: [{ name: "tagger", wasm: live, watch: false }] }));
    const child = spawn(process.execPath, [CLI, "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      let out = "";
      const waitFor = (re: RegExp) =>
        new Promise<RegExpExecArray>((resolve, reject) => {
          const check = () => {
            const m = re.exec(out);
            if (m) resolve(m);
          };
          child.stdout.on("data", (d: Buffer) => {
            out += d.toString();
            check();
          });
          child.once("exit", (code) => reject(new Error(`broker exited (${code}): ${out}`)));
          check();
        });
      const [, port] = await waitFor(/listening on mqtt:\/\/127\.0\.0\.1:(\d+)/);
      await waitFor(/wasmq ready/);
      const sub = await connect(`mqtt://127.0.0.1:${port}`);
      const got = collect(sub);
      await subscribe(sub, "stream/#", 1);
      const pub = await connect(`mqtt://127.0.0.1:${port}`);
      await pub.publishAsync("stream/a", "a", { qos: 1 });
      replaceFile(live, v2, true); // watch is off: nothing happens until SIGHUP
      await pub.publishAsync("stream/b", "b", { qos: 1 });
      child.kill("SIGHUP");
      await waitFor(/reloaded from/);
      await pub.publishAsync("stream/c", "c", { qos: 1 });
      await got.waitFor(3);
      assert.deepEqual(
        got.messages.map((m) => m.payload.toString()),
        ["a|v1", "b|v1", "c|v2"],
      );
      await end(sub, pub);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
