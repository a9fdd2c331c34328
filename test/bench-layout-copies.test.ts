// The fuel A/B's copies (bench/layout-copies.ts): each copy of a plugin must be a
// module of its own bytes (V8 compiles identical bytes once per process), still the
// same plugin to the engine, the host and the fuel instrumenter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tempDir, wasm } from "./helpers.js";
import { LAYOUT_SECTION, LayoutCopies } from "../bench/layout-copies.js";
import { MemoryKvStore, PluginChain } from "../host/index.js";
import { instrumentFuel } from "../host/fuel.js";
import { SIGNATURE_SECTION } from "../host/signing.js";
import { encodeCustomSection, listSections } from "../host/wasm-binary.js";
import { buildMessage, caller } from "../bench/hook-message.js";
import { benchSetup, BENCH_FUEL } from "../bench/plugins.js";

const decode = (b: ArrayBuffer) => new TextDecoder().decode(b);

test("every copy has bytes of its own and is still the same module", () => {
  const copies = new LayoutCopies();
  try {
    const original = readFileSync(wasm("filter"));
    const files = [copies.copy(wasm("filter")), copies.copy(wasm("filter")), copies.copy(wasm("filter"))];
    const bytes = files.map((f) => readFileSync(f));
    assert.equal(new Set(bytes.map((b) => b.toString("base64"))).size, 3, "three distinct byte sequences");
    const shape = (m: WebAssembly.Module) => JSON.stringify([WebAssembly.Module.imports(m), WebAssembly.Module.exports(m)]);
    const want = shape(new WebAssembly.Module(original));
    const tags = bytes.map((b) => {
      assert.ok(b.subarray(0, original.length).equals(original), "the original bytes come first, unchanged");
      const m = new WebAssembly.Module(b);
      assert.equal(shape(m), want, "same imports and exports");
      const sections = WebAssembly.Module.customSections(m, LAYOUT_SECTION);
      assert.equal(sections.length, 1);
      return decode(sections[0]!);
    });
    assert.equal(new Set(tags).size, 3, `each copy is tagged apart: ${tags.join(", ")}`);
    // The metered module keeps the tag, so metered copies are distinct too.
    const metered = bytes.map((b) => Buffer.from(instrumentFuel(b).binary));
    assert.equal(new Set(metered.map((b) => b.toString("base64"))).size, 3, "instrumented copies differ as well");
    assert.equal(decode(WebAssembly.Module.customSections(new WebAssembly.Module(metered[0]!), LAYOUT_SECTION)[0]!), tags[0]);
  } finally {
    copies.remove();
  }
});

test("a copy loads metered and unmetered and answers as the original does; release() and remove() delete the copies", async () => {
  const copies = new LayoutCopies();
  const config = benchSetup("filter")!.config;
  const message = buildMessage("publish", 64);
  const verdicts: number[] = [];
  let file = "";
  try {
    for (const meterFuel of [true, false]) {
      for (const source of [wasm("filter"), (file = copies.copy(wasm("filter")))]) {
        const chain = await PluginChain.load([{ name: "filter", wasm: source, config, limits: { fuel: BENCH_FUEL } }], { kv: new MemoryKvStore(), publish: () => {}, meterFuel });
        try {
          const traps: string[] = [];
          chain.on("trap", (_n, _h, kind) => traps.push(kind));
          verdicts.push(caller(chain, "publish", message)());
          assert.deepEqual(traps, [], `${source} ${meterFuel ? "metered" : "unmetered"} ran without a trap`);
        } finally {
          chain.close();
        }
      }
    }
    assert.equal(new Set(verdicts).size, 1, `same verdict everywhere: ${verdicts.join(", ")}`);
    assert.ok(existsSync(file));
    copies.release(file);
    assert.equal(existsSync(file), false, "a released copy is gone");
    assert.ok(existsSync(dirname(file)), "the others' directory stays until remove()");
  } finally {
    copies.remove();
  }
  assert.equal(existsSync(dirname(file)), false, "the copies' directory is gone");
});

test("a signed build's copy drops the signature, which would no longer be the last section", () => {
  const dir = tempDir("wasmq-layout-signed-");
  const copies = new LayoutCopies();
  try {
    const signed = join(dir, "signed.wasm");
    writeFileSync(signed, Buffer.concat([readFileSync(wasm("filter")), encodeCustomSection(SIGNATURE_SECTION, new Uint8Array(64))]));
    const names = listSections(readFileSync(copies.copy(signed))).filter((s) => s.id === 0).map((s) => s.name);
    assert.ok(!names.includes(SIGNATURE_SECTION), names.join(", "));
    assert.equal(names.at(-1), LAYOUT_SECTION);
  } finally {
    copies.remove();
    rmSync(dir, { recursive: true, force: true });
  }
});
