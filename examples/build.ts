#!/usr/bin/env node
/**
 * Build the plugins written in other languages than AssemblyScript, on the same
 * ABI: examples/c-plugin (Debian's clang + wasm-ld, no libc) and
 * examples/rust-plugin (Debian's rustc, wasm32-unknown-unknown, #![no_std]).
 * Each gets the acl manifest (plugins-as/acl/manifest.json: they take the same
 * config) embedded like an AssemblyScript build. Outputs: dist/examples/c-plugin/acl.wasm,
 * dist/examples/rust-plugin/acl.wasm. Up-to-date builds are skipped.
 *
 *   npm run build:examples
 *
 * A missing compiler is an error naming the Debian package, never a skip.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { embedManifest, parseManifestSource } from "../host/manifest.js";
import { ROOT } from "../host/tools/root.js";

export const C_PLUGIN = join(ROOT, "dist/examples/c-plugin/acl.wasm");
export const RUST_PLUGIN = join(ROOT, "dist/examples/rust-plugin/acl.wasm");
const ACL_MANIFEST = join(ROOT, "plugins-as/acl/manifest.json");

export class ToolchainError extends Error {}

function newest(dir: string): number {
  return Math.max(statSync(ACL_MANIFEST).mtimeMs, ...readdirSync(dir, { recursive: true }).map((f) => statSync(join(dir, String(f))).mtimeMs));
}

function run(cmd: string, args: string[], what: string): void {
  try {
    execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === "ENOENT") throw new ToolchainError(`${what}: ${cmd} is not installed`);
    throw new Error(`${what} failed:\n${e.stderr?.toString() ?? e.message}`);
  }
}

/** Debian's rustc ships the wasm32 standard library in libstd-rust-dev-wasm32; a rustup toolchain may lack it. */
function findRustc(): string {
  const candidates = [process.env.RUSTC, "/usr/bin/rustc", "rustc"].filter((c): c is string => !!c);
  for (const rustc of candidates) {
    try {
      const sysroot = execFileSync(rustc, ["--print", "sysroot"], { encoding: "utf8" }).trim();
      if (existsSync(join(sysroot, "lib/rustlib/wasm32-unknown-unknown"))) return rustc;
    } catch {
      // not this one
    }
  }
  throw new ToolchainError(
    `no rustc with the wasm32-unknown-unknown standard library (tried ${candidates.join(", ")}): apt-get install rustc libstd-rust-dev-wasm32`,
  );
}

function withManifest(out: string, name: string, language: string): void {
  const source = parseManifestSource(readFileSync(ACL_MANIFEST, "utf8"), ACL_MANIFEST);
  writeFileSync(out, embedManifest(readFileSync(out), { ...source, name, description: `${source.description} (${language} build)` }));
}

export function buildC(force = false): string {
  const dir = join(ROOT, "examples/c-plugin");
  if (!force && existsSync(C_PLUGIN) && statSync(C_PLUGIN).mtimeMs >= newest(dir)) return C_PLUGIN;
  mkdirSync(dirname(C_PLUGIN), { recursive: true });
  // wasm-ld comes with Debian's lld; clang finds it by name.
  const flags = ["--target=wasm32", "-O2", "-nostdlib", "-ffreestanding", "-fno-builtin", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function"];
  const link = ["-Wl,--no-entry", "-Wl,--import-memory", "-Wl,--strip-all", "-Wl,-z,stack-size=65536"];
  try {
    run("clang", [...flags, ...link, "-o", C_PLUGIN, join(dir, "acl.c")], "building examples/c-plugin with clang");
  } catch (err) {
    if (err instanceof ToolchainError) throw new ToolchainError(`${err.message}: apt-get install clang lld`);
    throw err;
  }
  withManifest(C_PLUGIN, "acl-c", "C");
  return C_PLUGIN;
}

export function buildRust(force = false): string {
  const dir = join(ROOT, "examples/rust-plugin");
  if (!force && existsSync(RUST_PLUGIN) && statSync(RUST_PLUGIN).mtimeMs >= newest(dir)) return RUST_PLUGIN;
  mkdirSync(dirname(RUST_PLUGIN), { recursive: true });
  const args = ["--edition", "2021", "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib", "-C", "opt-level=2", "-C", "panic=abort"];
  const link = ["-C", "link-arg=--import-memory", "-C", "link-arg=-zstack-size=65536", "-C", "link-arg=--strip-all"];
  run(findRustc(), [...args, ...link, "-o", RUST_PLUGIN, join(dir, "src/lib.rs")], "building examples/rust-plugin with rustc");
  withManifest(RUST_PLUGIN, "acl-rust", "Rust");
  return RUST_PLUGIN;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const force = process.argv.includes("--force");
  try {
    for (const build of [buildC, buildRust]) {
      const out = build(force);
      console.log(`✓ ${out.slice(ROOT.length + 1)} (${statSync(out).size} bytes)`);
    }
  } catch (err) {
    console.error(`✗ ${(err as Error).message}`);
    process.exit(1);
  }
}
