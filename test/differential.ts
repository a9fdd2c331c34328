// Differential testing of a stateless plugin against its native twin: the same
// seeded, generated messages run through the Wasm build and through native.ts
// (host/harness.js, no broker), and every result must be identical — verdict,
// CONNACK code, changed fields, extra publishes, log lines. Also: generators
// for realistic and adversarial inputs, and a helper that captures why a
// config is refused at init.
import assert from "node:assert/strict";
import { runPlugin, type HarnessMessage, type HarnessResult } from "../host/harness.js";
import { MemoryKvStore } from "../host/kv.js";
import { PluginSlot, type PluginSpec } from "../host/plugin-slot.js";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { MANIFEST_SECTION } from "../host/manifest.js";
import { withoutCustomSections } from "../host/wasm-binary.js";
import { native, ROOT, wasm } from "./helpers.js";
import { prng } from "./prng.js";

/** Deterministic PRNG (mulberry32) with the picks the generators need. */
export class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    /** Uniform in [0, 1). */
    this.next = prng(seed);
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** Topic levels and identifiers that trip up naive code: unicode, wildcards, '$', empties, '/', '%'. */
export const ODD_TEXT = [
  "", " ", "a b", "ü", "温度", "😀", "\u00e9\u0301", "%u", "%c", "{1}", "$SYS", "+", "#", "a/b", "a+b", "a#b",
  "..", "x.y", "\\", "\"", "null", "0", "-1", "1e3", "\t", "very-long-".repeat(20),
];

export function randomWord(rng: Rng): string {
  if (rng.chance(0.2)) return rng.pick(ODD_TEXT);
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_";
  let s = "";
  for (let i = 1 + rng.int(8); i > 0; i--) s += alphabet[rng.int(alphabet.length)];
  return s;
}

/** A client id or username: mostly plain, sometimes with '/', '+', '#', unicode or empty. */
export function randomIdentity(rng: Rng, known: readonly string[] = []): string {
  if (known.length && rng.chance(0.6)) return rng.pick(known);
  if (rng.chance(0.3)) return rng.pick(["a/b", "x+y", "x#", "#", "+", "/", "", "ü-ser", "dev/../x", "%u", "%c"]);
  return randomWord(rng);
}

/** A topic built from the given level vocabulary plus odd levels. */
export function randomTopic(rng: Rng, vocabulary: readonly (readonly string[])[] = []): string {
  if (vocabulary.length && rng.chance(0.7)) {
    return vocabulary.map((levels) => (rng.chance(0.1) ? randomWord(rng) : rng.pick(levels))).join("/");
  }
  const levels: string[] = [];
  for (let i = 1 + rng.int(5); i > 0; i--) levels.push(randomWord(rng));
  return levels.join("/");
}

const NUMBERS = [
  0, -0, 1, -1, 0.5, 21.5, 29.999, 30, 30.000001, 85, 85.0000001, -40, -40.5, 100, 1e21, -1e21, 1e308, -1e308, 5e-324, 2 ** 53, 2 ** 53 + 2,
  123456789.987654321, 0.1 + 0.2, 1 / 3, -2 / 3, 1e-7, 999999.9999995, 9007199254740991, 4.35, 1.005, 2.675,
];

/** A number as JSON text, including spellings JSON.stringify never writes. */
export function randomNumberText(rng: Rng): string {
  const r = rng.int(10);
  if (r < 4) return JSON.stringify(rng.pick(NUMBERS));
  if (r < 6) return ((rng.next() - 0.5) * 10 ** rng.int(12)).toFixed(rng.int(8));
  if (r < 7) return rng.pick(["1e400", "-1e400", "1E2", "1e-2", "-0.0", "0.000", "12345678901234567890123", "1.7976931348623157e308", "4.9e-324", "2.5e-324"]);
  if (r < 8) return String(rng.int(2000) - 1000);
  return String((rng.next() - 0.3) * 200);
}

/** A JSON value as text, possibly with the given fields at top level. */
export function randomJson(rng: Rng, fields: readonly string[], depth = 0): string {
  const r = rng.int(10);
  if (depth > 2 || r < 3) {
    const s = rng.int(6);
    if (s === 0) return JSON.stringify(randomWord(rng));
    if (s === 1) return rng.pick(["true", "false", "null"]);
    return randomNumberText(rng);
  }
  if (r < 4) {
    const items: string[] = [];
    for (let i = rng.int(4); i > 0; i--) items.push(randomJson(rng, fields, depth + 1));
    return `[${items.join(rng.pick([",", ", ", " ,\n"]))}]`;
  }
  const members: string[] = [];
  for (let i = rng.int(5); i > 0; i--) {
    const key = fields.length && rng.chance(0.6) ? rng.pick(fields) : randomWord(rng);
    // Keys spelled with escapes name the same field; duplicates are legal JSON.
    const spelled = rng.chance(0.1) ? JSON.stringify(key).replace(/[a-z]/, (c) => `\\u00${c.charCodeAt(0).toString(16)}`) : JSON.stringify(key);
    members.push(`${spelled}${rng.pick([":", " : ", ":\n"])}${randomJson(rng, fields, depth + 1)}`);
  }
  return `{${members.join(rng.pick([",", ", ", ",\n  "]))}}`;
}

/** Text that is almost JSON. */
export function brokenJson(rng: Rng, fields: readonly string[]): string {
  const good = randomJson(rng, fields, 1);
  return rng.pick([
    good.slice(0, Math.max(0, good.length - 1 - rng.int(3))),
    `${good},`,
    `{${JSON.stringify(rng.pick([...fields, "x"]))}:}`,
    `{"value": NaN}`,
    `{"value": 01}`,
    `{'value': 1}`,
    `{"value": 1,}`,
    "",
    " ",
    "null",
    "[1,2",
    `{"a":"\u0001"}`,
  ]);
}

/** A payload for the harness: JSON (good or broken), plain text, or raw bytes (base64). */
export function randomPayload(rng: Rng, fields: readonly string[]): HarnessMessage["payload"] {
  const r = rng.int(20);
  if (r < 12) {
    // Mostly objects holding the interesting fields.
    const members = fields.filter(() => rng.chance(0.7)).map((f) => `${JSON.stringify(f)}:${rng.chance(0.8) ? randomNumberText(rng) : randomJson(rng, fields, 2)}`);
    if (rng.chance(0.5)) members.push(`${JSON.stringify(randomWord(rng))}:${randomJson(rng, fields, 1)}`);
    return `{${members.join(",")}}`;
  }
  if (r < 15) return randomJson(rng, fields);
  if (r < 17) return brokenJson(rng, fields);
  if (r < 18) return randomWord(rng);
  // Bytes, including invalid UTF-8 and JSON with a stray byte.
  const bytes = rng.chance(0.5) ? rng.bytes(rng.int(40)) : Buffer.concat([Buffer.from(`{"${rng.pick([...fields, "v"])}":"`), Buffer.from([0xc0 + rng.int(64), rng.int(256)]), Buffer.from('"}')]);
  return { base64: bytes.toString("base64") };
}

/** The plugin's Wasm build and its native twin, with the same config and limits. */
/**
 * The plugin's build without its manifest: the twins are compared on their own
 * config checks, which a manifest's schema would otherwise answer first for the
 * Wasm build alone (the schema itself is tested in manifest.test.ts).
 */
export function withoutManifest(name: string): string {
  const out = join(ROOT, "dist/test-fixtures/no-manifest", `${name}.wasm`);
  const src = wasm(name);
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out;
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}`;
  writeFileSync(tmp, withoutCustomSections(readFileSync(src), MANIFEST_SECTION));
  renameSync(tmp, out);
  return out;
}

export function twinSpecs(name: string, config: Record<string, unknown>, limits?: PluginSpec["limits"]): { wasm: PluginSpec; native: PluginSpec } {
  return {
    wasm: { name, wasm: withoutManifest(name), config, ...(limits ? { limits } : {}) },
    native: { name, native: native(name), config },
  };
}

function describeInput(m: HarnessMessage): string {
  return JSON.stringify(m, (_k, v: unknown) => (typeof v === "string" && v.length > 300 ? `${v.slice(0, 300)}…` : v));
}

/**
 * Run the messages through both builds and assert identical results, message by
 * message (the failure names the input). Returns the Wasm results for further checks.
 */
export async function assertTwinsAgree(
  name: string,
  config: Record<string, unknown>,
  messages: HarnessMessage[],
  limits?: PluginSpec["limits"],
): Promise<HarnessResult[]> {
  const specs = twinSpecs(name, config, limits);
  const [fromWasm, fromNative] = await Promise.all([runPlugin(specs.wasm, messages), runPlugin(specs.native, messages)]);
  assert.equal(fromWasm.length, messages.length);
  for (let i = 0; i < messages.length; i++) {
    assert.equal(fromWasm[i]!.trap, undefined, `${name}: the Wasm build trapped (${fromWasm[i]!.trap}) on message ${i}: ${describeInput(messages[i]!)}`);
    assert.deepEqual(fromWasm[i], fromNative[i], `${name}: Wasm and native differ on message ${i}: ${describeInput(messages[i]!)}`);
  }
  return fromWasm;
}

/** How many results have each verdict: to check that generated inputs exercise every outcome. */
export function verdictCounts(results: HarnessResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) {
    const key = r.verdict === "deny" && r.returnCode !== undefined ? `deny:${r.returnCode}` : r.verdict;
    counts[key] = (counts[key] ?? 0) + 1;
    if (r.changed) counts.changed = (counts.changed ?? 0) + 1;
    if (r.published.length) counts.published = (counts.published ?? 0) + 1;
  }
  return counts;
}

/** Load a plugin that is expected to refuse its config; resolves to the error and the plugin's log lines. */
export async function refusal(spec: PluginSpec): Promise<{ error: string; logs: string[] }> {
  const logs: string[] = [];
  const slot = new PluginSlot(spec, new MemoryKvStore(), {
    trap() {},
    breaker() {},
    log: (_slot, _level, message) => logs.push(message),
  });
  try {
    await slot.load();
  } catch (err) {
    return { error: (err as Error).message, logs };
  } finally {
    slot.dispose();
  }
  throw new Error(`plugin "${spec.name}" accepted a config it should refuse: ${JSON.stringify(spec.config)}`);
}

/** Both builds refuse the config with the same log lines, and those lines match `reason`. */
export async function assertTwinsRefuse(name: string, config: Record<string, unknown>, reason: RegExp, limits?: PluginSpec["limits"]): Promise<void> {
  const specs = twinSpecs(name, config, limits);
  const [fromWasm, fromNative] = await Promise.all([refusal(specs.wasm), refusal(specs.native)]);
  for (const r of [fromWasm, fromNative]) assert.match(r.error, new RegExp(`plugin "${name}": init refused`), r.error);
  assert.deepEqual(fromWasm.logs, fromNative.logs, `${name}: the twins refuse ${JSON.stringify(config)} differently`);
  assert.ok(fromWasm.logs.some((l) => reason.test(l)), `${name}: refusing ${JSON.stringify(config)} logged ${JSON.stringify(fromWasm.logs)}, expected ${reason}`);
}
