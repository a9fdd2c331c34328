// A bad plugin is refused at load with a message naming the plugin and the reason;
// a module built without our SDK is sandboxed (metered, capped) just the same.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import binaryen from "binaryen";
import { PluginChain, MemoryKvStore, emptyMessage, Verdict, type PluginSpec } from "../host/index.js";
import { buildFixture, buildSource } from "./fixtures.js";
import { tempDir, startTestBroker } from "./helpers.js";

async function load(spec: PluginSpec): Promise<PluginChain> {
  return PluginChain.load([spec], { kv: new MemoryKvStore(), publish: () => {} });
}

function watModule(text: string, file: string): string {
  const module = binaryen.parseText(text);
  try {
    writeFileSync(file, module.emitBinary());
  } finally {
    module.dispose();
  }
  return file;
}

const ABI_EXPORTS = `
  (func (export "wasmq_abi_version") (result i32) (i32.const 1))
  (func (export "wasmq_reserve") (param i32) (result i32) (i32.const 1024))`;

describe("plugin loading refuses bad builds, naming the plugin and the reason", () => {
  const dir = tempDir();

  test("an import outside the ABI is refused, naming the import", async () => {
    const wasm = await buildFixture("forbidden-import");
    await assert.rejects(load({ name: "sneaky", wasm }), /plugin "sneaky": refused: it imports "wasi_snapshot_preview1\.fd_write"/);
  });

  test("a module with its own memory is refused (it would escape the memory cap)", async () => {
    const wasm = watModule(`(module (memory 1) ${ABI_EXPORTS} (func (export "onPublish") (param i32) (result i32) (i32.const 0)))`, join(dir, "ownmem.wasm"));
    await assert.rejects(load({ name: "ownmem", wasm }), /plugin "ownmem": refused: it defines its own memory/);
  });

  test("a missing ABI export is refused, naming it", async () => {
    const wasm = watModule(
      `(module (import "env" "memory" (memory 1)) (func (export "wasmq_abi_version") (result i32) (i32.const 1)) (func (export "onPublish") (param i32) (result i32) (i32.const 0)))`,
      join(dir, "noreserve.wasm"),
    );
    await assert.rejects(load({ name: "noreserve", wasm }), /plugin "noreserve": refused: it does not export "wasmq_reserve"/);
  });

  test("an ABI version mismatch is refused with both versions", async () => {
    const wasm = watModule(
      `(module (import "env" "memory" (memory 1)) (func (export "wasmq_abi_version") (result i32) (i32.const 3))
        (func (export "wasmq_reserve") (param i32) (result i32) (i32.const 1024)) (func (export "onPublish") (param i32) (result i32) (i32.const 0)))`,
      join(dir, "v2.wasm"),
    );
    await assert.rejects(load({ name: "future", wasm }), /plugin "future": refused: it was built for ABI v3, this host speaks ABI v1 and v2/);
  });

  test("a module that implements no hook is refused", async () => {
    const wasm = watModule(`(module (import "env" "memory" (memory 1)) ${ABI_EXPORTS})`, join(dir, "nohooks.wasm"));
    await assert.rejects(load({ name: "idle", wasm }), /plugin "idle": refused: it exports none of the hooks/);
  });

  test("a module needing more memory than its cap is refused at load", async () => {
    const wasm = watModule(`(module (import "env" "memory" (memory 40)) ${ABI_EXPORTS} (func (export "onPublish") (param i32) (result i32) (i32.const 0)))`, join(dir, "big.wasm"));
    await assert.rejects(load({ name: "big", wasm, limits: { memoryPages: 16 } }), /plugin "big": refused: it needs 40 memory pages at start but its limit \(limits\.memoryPages\) is 16/);
  });

  test("a file that is not Wasm, and a missing file, are refused", async () => {
    const junk = join(dir, "junk.wasm");
    writeFileSync(junk, "definitely not wasm");
    await assert.rejects(load({ name: "junk", wasm: junk }), /plugin "junk": refused: not a valid WebAssembly module/);
    await assert.rejects(load({ name: "ghost", wasm: join(dir, "missing.wasm") }), /plugin "ghost": refused: cannot read/);
  });

  test("init refusing its config stops the broker from starting, naming the plugin", async () => {
    const wasm = await buildFixture("probe");
    await assert.rejects(startTestBroker({ persistence: "memory", plugins: [{ name: "picky", wasm, config: { refuse: true } }] }), /plugin "picky": init refused its config/);
    await assert.rejects(startTestBroker({ persistence: "memory", plugins: [{ name: "crashy", wasm, config: { trapInInit: true } }] }), /plugin "crashy": init failed: unreachable/);
  });
});

describe("a module built without our SDK is sandboxed just the same", () => {
  const dir = tempDir();

  test("hand-written Wasm: metered (an endless loop runs out of fuel) and isolated", async () => {
    const wasm = watModule(
      `(module (import "env" "memory" (memory 1)) ${ABI_EXPORTS}
        (func (export "onPublish") (param $p i32) (result i32)
          (if (i32.eq (i32.load8_u (i32.add (local.get $p) (i32.const 32))) (i32.const 108)) ;; topic starts with 'l'
            (then (loop $spin (br $spin))))
          (i32.const 1)))`,
      join(dir, "raw.wasm"),
    );
    const chain = await load({ name: "raw", wasm, onError: "fail-open", limits: { fuel: 100_000 } });
    const traps: string[] = [];
    chain.on("trap", (_p, _h, kind) => traps.push(kind));
    const msg = emptyMessage();
    msg.topic = "loop";
    assert.equal(chain.run("publish", msg).verdict, Verdict.Continue, "fail-open answers for the trapped call");
    assert.deepEqual(traps, ["fuel"]);
    msg.topic = "other";
    assert.equal(chain.run("publish", msg).verdict, Verdict.Drop, "a fresh instance serves the next message");
    chain.close();
  });

  test("a generated AssemblyScript plugin's memory growth stops at its cap", async () => {
    const wasm = await buildSource(
      `import { Message, Verdict } from "SDK_PATH";
       export * from "SDK_PATH/exports";
       const keep: Array<ArrayBuffer> = [];
       export function onPublish(msg: Message): i32 { for (let i = 0; i < 1000; i++) keep.push(new ArrayBuffer(65536)); return Verdict.Continue; }`,
      join(dir, "grow.wasm"),
    );
    const chain = await load({ name: "grow", wasm, onError: "fail-closed", limits: { memoryPages: 16 } });
    const traps: string[] = [];
    chain.on("trap", (_p, _h, kind) => traps.push(kind));
    assert.equal(chain.run("publish", emptyMessage()).verdict, Verdict.Drop);
    assert.deepEqual(traps, ["memory"]);
    chain.close();
  });
});
