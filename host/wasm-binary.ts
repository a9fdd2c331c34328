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

/** One top-level section of a module, by byte offsets into the module. */
export interface SectionSpan {
  /** Section id (0 = custom). */
  id: number;
  /** Custom sections: their name. */
  name?: string;
  /** Offset of the section's id byte. */
  start: number;
  /** Offset just past the section. */
  end: number;
  /** Offset where the section's content starts (custom sections: after the name). */
  contentStart: number;
}

/** A small cursor over module bytes; every read is bounds-checked. */
class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}
  fail(what: string): never {
    throw new WasmFormatError(`not a valid WebAssembly module (${what} at byte ${this.pos})`);
  }
  u8(): number {
    return this.pos < this.bytes.length ? this.bytes[this.pos++]! : this.fail("unexpected end");
  }
  leb(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.u8();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35) this.fail("LEB128 too long");
    }
  }
  sleb(): number {
    let result = 0;
    let shift = 0;
    let b: number;
    do {
      b = this.u8();
      result |= (b & 0x7f) << shift;
      shift += 7;
      if (shift > 35) this.fail("LEB128 too long");
    } while (b & 0x80);
    return shift < 32 && b & 0x40 ? result | (-1 << shift) : result;
  }
  name(): string {
    const len = this.leb();
    if (this.pos + len > this.bytes.length) this.fail("name past end");
    const s = new TextDecoder("utf-8").decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
}

/** Every top-level section with its offsets; custom sections with their names. */
export function listSections(bytes: Uint8Array): SectionSpan[] {
  const r = new Reader(bytes);
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) r.fail("bad magic");
  r.pos = 8;
  const out: SectionSpan[] = [];
  while (r.pos < bytes.length) {
    const start = r.pos;
    const id = r.u8();
    const size = r.leb();
    const end = r.pos + size;
    if (end > bytes.length) r.fail("section past end");
    if (id === 0) {
      const name = r.name();
      if (r.pos > end) r.fail("custom section name past its section");
      out.push({ id, name, start, end, contentStart: r.pos });
    } else {
      out.push({ id, start, end, contentStart: r.pos });
    }
    r.pos = end;
  }
  return out;
}

/** The content of the custom sections called `name`, in module order. */
export function customSections(bytes: Uint8Array, name: string): Uint8Array[] {
  return listSections(bytes)
    .filter((s) => s.id === 0 && s.name === name)
    .map((s) => bytes.subarray(s.contentStart, s.end));
}

function lebBytes(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** A custom section (id, size, name, content) ready to append to a module. */
export function encodeCustomSection(name: string, content: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const body = [...lebBytes(nameBytes.length), ...nameBytes];
  const size = body.length + content.length;
  const head = Uint8Array.from([0, ...lebBytes(size), ...body]);
  const out = new Uint8Array(head.length + content.length);
  out.set(head);
  out.set(content, head.length);
  return out;
}

/** The module without its custom sections called `name` (every other byte kept, in order). */
export function withoutCustomSections(bytes: Uint8Array, name: string): Uint8Array {
  const drop = listSections(bytes).filter((s) => s.id === 0 && s.name === name);
  if (drop.length === 0) return bytes;
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const s of drop) {
    parts.push(bytes.subarray(from, s.start));
    from = s.end;
  }
  parts.push(bytes.subarray(from));
  return Buffer.concat(parts);
}

export interface ModuleExport {
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
}

const EXTERN_KINDS = ["function", "table", "memory", "global", "tag"] as const;

/** The module's exports, read from the export section. */
export function listExports(bytes: Uint8Array): ModuleExport[] {
  const section = listSections(bytes).find((s) => s.id === 7);
  if (!section) return [];
  const r = new Reader(bytes);
  r.pos = section.contentStart;
  const out: ModuleExport[] = [];
  for (let i = r.leb(); i > 0; i--) {
    const name = r.name();
    const kind = EXTERN_KINDS[r.u8()] ?? r.fail("unknown export kind");
    r.leb();
    out.push({ name, kind });
  }
  return out;
}

/**
 * The constant an exported function returns when its body is exactly
 * `i32.const N; end` (how AssemblyScript, clang and rustc all compile
 * `wasmq_abi_version`), or null when the body is anything else. Lets `inspect`
 * report a plugin's ABI version without running any of its code.
 */
export function constantExport(bytes: Uint8Array, exportName: string): number | null {
  const sections = listSections(bytes);
  const r = new Reader(bytes);
  let importedFunctions = 0;
  const imports = sections.find((s) => s.id === 2);
  if (imports) {
    r.pos = imports.contentStart;
    for (let i = r.leb(); i > 0; i--) {
      r.name();
      r.name();
      const kind = r.u8();
      if (kind === 0) {
        importedFunctions++;
        r.leb();
      } else if (kind === 1) {
        r.u8();
        if (r.u8() & 1) r.leb();
        r.leb();
      } else if (kind === 2) {
        if (r.u8() & 1) r.leb();
        r.leb();
      } else if (kind === 3) {
        r.u8();
        r.u8();
      } else {
        r.u8();
        r.leb();
      }
    }
  }
  const exportsSection = sections.find((s) => s.id === 7);
  if (!exportsSection) return null;
  r.pos = exportsSection.contentStart;
  let index = -1;
  for (let i = r.leb(); i > 0; i--) {
    const name = r.name();
    const kind = r.u8();
    const idx = r.leb();
    if (name === exportName && kind === 0) index = idx;
  }
  const local = index - importedFunctions;
  const code = sections.find((s) => s.id === 10);
  if (local < 0 || !code) return null;
  r.pos = code.contentStart;
  const count = r.leb();
  if (local >= count) return null;
  for (let i = 0; i < local; i++) {
    const size = r.leb(); // read before advancing: `r.pos += r.leb()` would add to the stale position
    r.pos += size;
  }
  const size = r.leb();
  const end = r.pos + size;
  if (r.leb() !== 0) return null; // local declarations
  if (r.u8() !== 0x41) return null; // i32.const
  const value = r.sleb();
  return r.u8() === 0x0b && r.pos === end ? value : null;
}
