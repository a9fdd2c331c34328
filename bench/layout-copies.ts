/**
 * Copies of a plugin's .wasm that V8 compiles separately, for the fuel A/B
 * (bench/hook-fuel-child.ts).
 *
 * Why: V8 keeps one compiled module per distinct byte sequence in a process (its
 * native-module cache), so loading one .wasm N times gives N instances of one
 * compilation — one code layout, not N. Measured (bench/README.md, "Fuel, part 7"):
 * two unmetered loads of the same file agree within ~3 points in every process, two
 * loads that differ only by an appended custom section differ by up to 11–13 points,
 * as much as metered and unmetered copies do. Each copy here gets a custom section
 * (ignored by the engine and by the host) holding its own number, so every copy
 * is compiled, and placed, on its own.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SIGNATURE_SECTION } from "../host/signing.js";
import { encodeCustomSection, withoutCustomSections } from "../host/wasm-binary.js";

export const LAYOUT_SECTION = "wasmq.bench-layout";

export class LayoutCopies {
  private readonly dir = mkdtempSync(join(tmpdir(), "wasmq-fuel-ab-"));
  private count = 0;
  private readonly cleanUp = () => this.remove();

  constructor() {
    process.once("exit", this.cleanUp);
  }

  /** Copies written so far, each a compilation of its own. */
  get made(): number {
    return this.count;
  }

  /**
   * A new file with `wasm`'s bytes plus a custom section no other copy has. A
   * signature must stay the module's last section, so a signed build's is dropped:
   * the bench loads its copies without trust settings.
   */
  copy(wasm: string): string {
    const n = this.count++;
    const tag = encodeCustomSection(LAYOUT_SECTION, new TextEncoder().encode(`${process.pid}.${n}`));
    const file = join(this.dir, `${n}.wasm`);
    writeFileSync(file, Buffer.concat([withoutCustomSections(readFileSync(wasm), SIGNATURE_SECTION), tag]));
    return file;
  }

  /** A copy the host has read: delete it now, so a killed run leaves at most one behind. */
  release(file: string): void {
    rmSync(file, { force: true });
  }

  remove(): void {
    process.removeListener("exit", this.cleanUp);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
