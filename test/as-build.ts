// Building AssemblyScript test fixtures against the plugin SDK: a temporary
// folder holding a copy of plugins-as/sdk/ (so an entry imports "./sdk/json"
// exactly as a plugin does), where entry sources are compiled with asc and
// instantiated with the loader, plus the two helpers every such suite needs to
// hand bytes and strings to the module.

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import asc from "assemblyscript/asc";
import { instantiate } from "@assemblyscript/loader";
import { ROOT } from "./helpers.js";

/** What every module built with `--exportRuntime` and an `alloc` export offers. */
export interface AsCore {
  memory: WebAssembly.Memory;
  __newString(s: string): number;
  __getString(p: number): string;
  __pin(p: number): number;
  __unpin(p: number): void;
  alloc(n: number): number;
}

export class AsWorkspace {
  private constructor(readonly dir: string) {}

  /** A fresh folder (named after `prefix`) with a copy of the SDK sources in ./sdk. */
  static create(prefix: string): AsWorkspace {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    cpSync(join(ROOT, "plugins-as", "sdk"), join(dir, "sdk"), { recursive: true });
    return new AsWorkspace(dir);
  }

  /**
   * Writes `source` as NAME.ts and compiles it to NAME.wasm with asc (-O3, the
   * runtime exported); `args` adds options such as ["--runtime", "stub"] or
   * ["--enable", "simd"]. Throws with asc's output when it fails.
   */
  async compile(name: string, source: string, args: string[] = []): Promise<Uint8Array> {
    writeFileSync(join(this.dir, name + ".ts"), source);
    const out = name + ".wasm";
    const { error, stderr } = await asc.main([name + ".ts", "--baseDir", this.dir, "--outFile", out, "--exportRuntime", "-O3", ...args], {});
    if (error) throw new Error(`asc failed for ${name}: ${error.message}\n${stderr.toString()}`);
    return readFileSync(join(this.dir, out));
  }

  /** compile, then instantiate (no imports) and return the exports as T. */
  async load<T>(name: string, source: string, args: string[] = []): Promise<T> {
    const wasm = await this.compile(name, source, args);
    return (await instantiate(wasm, {})).exports as unknown as T;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Copies bytes into the module's memory; returns the pointer (the caller frees it, if the module can). */
export function put(ex: AsCore, bytes: Uint8Array): number {
  const p = ex.alloc(bytes.length);
  new Uint8Array(ex.memory.buffer).set(bytes, p); // view after alloc (memory may grow)
  return p;
}

/** Calls fn with a pinned AS copy of s (0 for null), unpinned afterwards. */
export function withString<R>(ex: AsCore, s: string | null, fn: (p: number) => R): R {
  if (s === null) return fn(0);
  const p = ex.__pin(ex.__newString(s));
  try {
    return fn(p);
  } finally {
    ex.__unpin(p);
  }
}
