/**
 * Just enough of the Wasm binary format to check a plugin before instantiating
 * it: which imports it wants (with the memory import's limits, which
 * `WebAssembly.Module.imports` does not report) and whether it defines a memory
 * of its own, which would escape the host's memory cap.
 */
export interface ModuleImport {
  module: string;
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
  /** memory imports: minimum pages declared by the module. */
  minPages?: number;
  maxPages?: number;
}

export interface ModuleShape {
  imports: ModuleImport[];
  definesMemory: boolean;
}

export class WasmFormatError extends Error {}

export function inspectModule(bytes: Uint8Array): ModuleShape {
  let pos = 0;
  const fail = (what: string): never => {
    throw new WasmFormatError(`not a valid WebAssembly module (${what} at byte ${pos})`);
  };
  const u8 = (): number => (pos < bytes.length ? bytes[pos++]! : fail("unexpected end"));
  const leb = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = u8();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35) fail("LEB128 too long");
    }
  };
  const name = (): string => {
    const len = leb();
    if (pos + len > bytes.length) fail("name past end");
    const s = new TextDecoder("utf-8", { fatal: false }).decode(bytes.subarray(pos, pos + len));
    pos += len;
    return s;
  };
  const limits = (): { min: number; max?: number } => {
    const flags = u8();
    const min = leb();
    return flags & 1 ? { min, max: leb() } : { min };
  };

  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) fail("bad magic");
  pos = 8;
  const imports: ModuleImport[] = [];
  let definesMemory = false;
  while (pos < bytes.length) {
    const id = u8();
    const size = leb();
    const end = pos + size;
    if (end > bytes.length) fail("section past end");
    if (id === 2) {
      const count = leb();
      for (let i = 0; i < count; i++) {
        const module = name();
        const field = name();
        const kind = u8();
        if (kind === 0) {
          leb();
          imports.push({ module, name: field, kind: "function" });
        } else if (kind === 1) {
          u8();
          limits();
          imports.push({ module, name: field, kind: "table" });
        } else if (kind === 2) {
          const l = limits();
          imports.push({ module, name: field, kind: "memory", minPages: l.min, ...(l.max !== undefined ? { maxPages: l.max } : {}) });
        } else if (kind === 3) {
          u8();
          u8();
          imports.push({ module, name: field, kind: "global" });
        } else if (kind === 4) {
          u8();
          leb();
          imports.push({ module, name: field, kind: "tag" });
        } else {
          fail(`unknown import kind ${kind}`);
        }
      }
    } else if (id === 5) {
      definesMemory = leb() > 0;
    }
    pos = end;
  }
  return { imports, definesMemory };
}
