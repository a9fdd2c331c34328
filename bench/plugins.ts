/**
 * Which example plugins the bench can use (built as .wasm and as a native twin)
 * and how each is configured for bench traffic: every plugin must do its real
 * per-message work on the bench's messages and let them through, so the bench
 * measures the cost of the work, not the cost of dropping.
 */
import { pbkdf2Sync } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root (this file runs from dist/bench/). */
export const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");

export function wasmPath(name: string): string {
  return join(ROOT, "dist/plugins", `${name}.wasm`);
}
export function nativePath(name: string): string {
  return join(ROOT, "dist/plugins-as", name, "native.js");
}

/** Plugins with both builds present, in folder order. */
export function builtPlugins(): string[] {
  const dir = join(ROOT, "plugins-as");
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== "sdk" && existsSync(join(dir, d.name, "plugin.ts")))
    .map((d) => d.name)
    .filter((name) => existsSync(wasmPath(name)) && existsSync(nativePath(name)))
    .sort();
}

/**
 * Fuel budget per call for every plugin the bench loads. Fuel only bounds a
 * call, it does not change its speed, so the bench fixes a generous budget and
 * stays independent of the configured default: with the default of 10M that
 * wasmq first shipped, filter's JSON scan (charged ~1,100 fuel per payload byte
 * by the cost model) ran out on a 16 KB reading and the message was dropped.
 * bench:hooks reports the fuel each call uses against the current default.
 */
export const BENCH_FUEL = 1_000_000_000;

/** Credentials of the bench's clients when the chain has the auth plugin. */
export const BENCH_USER = { username: "bench", password: "bench-password" };

/**
 * Bench traffic: publisher i publishes JSON readings `{"t":..,"s":..,"value":21.5,...}`
 * on `bench/<i>/data`; subscribers subscribe to that topic or `bench/+/data`.
 */
export const BENCH_TOPIC_FILTER = "bench/+/data";
export function benchTopic(publisher: number): string {
  return `bench/${publisher}/data`;
}


export interface BenchPluginSetup {
  /** Config for the bench traffic above. */
  config: Record<string, unknown>;
  /** Whether the plugin works on every live message (publish or deliver hook); auth and retention do not. */
  perMessage: boolean;
}

/** PBKDF2 iterations of the bench user's hash: low, so connecting 100 clients stays quick; the hook bench reports the cost. */
const AUTH_ITERATIONS = 1000;

/** A hash in auth's format, "pbkdf2-sha256$<iterations>$<salt>$<key>", with a fixed salt so runs are repeatable. */
function authHash(password: string): string {
  const salt = Buffer.from("wasmq-bench-salt");
  const key = pbkdf2Sync(password, salt, AUTH_ITERATIONS, 32, "sha256");
  return `pbkdf2-sha256$${AUTH_ITERATIONS}$${salt.toString("base64")}$${key.toString("base64")}`;
}

/**
 * Bench configurations of the example plugins. Each keeps its plugin on the
 * working path for bench traffic and lets the traffic through: acl matches and
 * allows; filter parses and range-checks the reading; router evaluates its
 * route's JSON condition (the threshold is above the reading, so nothing extra
 * is published) and its rewrite filter; transform scans each reading for fields
 * to redact that readings do not carry; ratelimit runs every client's token
 * bucket with limits far above the bench's rates; aggregate records each reading
 * in its window.
 */
const KNOWN: Record<string, () => BenchPluginSetup> = {
  auth: () => ({
    perMessage: false,
    config: {
      users: [
        { username: BENCH_USER.username, hash: authHash(BENCH_USER.password) },
        { username: "ops", hash: authHash("ops-password") },
      ],
      // The bench's client ids are bench-pub-N / bench-sub-N.
      clientIdPattern: "%u-*",
    },
  }),
  acl: () => ({
    perMessage: true,
    config: {
      default: "deny",
      onDeniedPublish: "drop",
      rules: [
        { topic: "admin/#", username: "ops", access: "readwrite" },
        { topic: "devices/%c/#", access: "readwrite" },
        { topic: "bench/#", access: "readwrite" },
      ],
    },
  }),
  filter: () => ({
    perMessage: true,
    config: {
      action: "drop",
      onMissing: "drop",
      onInvalid: "drop",
      rules: [
        { topic: "sensors/+/humidity", field: "value", min: 0, max: 100 },
        { topic: BENCH_TOPIC_FILTER, field: "value", min: -40, max: 85 },
      ],
    },
  }),
  router: () => ({
    perMessage: true,
    config: {
      routes: [{ from: BENCH_TOPIC_FILTER, to: "alerts/{1}", when: { field: "value", above: 1000 } }],
      rewrites: [{ from: "legacy/+/reading", to: "bench/{1}/data" }],
    },
  }),
  transform: () => ({
    perMessage: true,
    config: { rules: [{ topic: BENCH_TOPIC_FILTER, redact: ["password", "token"] }] },
  }),
  ratelimit: () => ({
    perMessage: true,
    config: {
      action: "drop",
      messagesPerSecond: 1e9,
      bytesPerSecond: 1e12,
      perTopic: [{ topic: "bench/#", messagesPerSecond: 1e9 }],
    },
  }),
  aggregate: () => ({
    perMessage: true,
    config: { topics: [BENCH_TOPIC_FILTER], field: "value", intervalSec: 60, persist: false },
  }),
  retention: () => ({
    perMessage: false,
    config: {
      retain: [{ topic: "bench/#", allow: true, ttlSec: 3600 }],
      queue: [{ topic: "bench/#", allow: true, ttlSec: 600 }],
      maxQueuedPerClient: 1_000_000,
    },
  }),
};

/** The config a plugin gets in the benches, or null when the bench does not know the plugin. */
export function benchSetup(name: string): BenchPluginSetup | null {
  return KNOWN[name]?.() ?? null;
}

/** The plugin's own example config (what an operator starts from). */
export function exampleConfig(name: string): Record<string, unknown> {
  const file = join(ROOT, "plugins-as", name, "config.example.json");
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`plugins-as/${name}/config.example.json is not valid JSON: ${(err as Error).message}`);
  }
}

/** The order plugins join the standard chain, and the order chainN takes per-message plugins in. */
const STANDARD_ORDER = ["auth", "acl", "filter", "router"];
const PER_MESSAGE_ORDER = ["acl", "filter", "router", "transform", "ratelimit", "aggregate"];

export interface ChainEntry {
  name: string;
  plugin: string;
  config: Record<string, unknown>;
}

/** auth + acl + filter + router, as many of them as are built. */
export function standardChain(): ChainEntry[] {
  const built = new Set(builtPlugins());
  const out: ChainEntry[] = [];
  for (const name of STANDARD_ORDER) {
    if (!built.has(name)) continue;
    const setup = benchSetup(name);
    if (setup) out.push({ name, plugin: name, config: setup.config });
  }
  return out;
}

/**
 * N plugins that each do work per message. When fewer distinct plugins are
 * built and configurable than N, the list repeats under distinct names (acl-2,
 * filter-2, ...): the per-plugin cost is what chainN measures.
 */
export function chainOfLength(n: number): ChainEntry[] {
  const built = new Set(builtPlugins());
  const usable = PER_MESSAGE_ORDER.filter((name) => built.has(name) && benchSetup(name)?.perMessage);
  if (n > 0 && usable.length === 0) throw new Error("chain scenarios need at least one built per-message plugin (run npm run build)");
  const out: ChainEntry[] = [];
  for (let i = 0; i < n; i++) {
    const plugin = usable[i % usable.length]!;
    const round = Math.floor(i / usable.length);
    out.push({ name: round === 0 ? plugin : `${plugin}-${round + 1}`, plugin, config: benchSetup(plugin)!.config });
  }
  return out;
}

/** Whether the chain needs the bench's clients to send credentials. */
export function chainNeedsCredentials(chain: ChainEntry[]): boolean {
  return chain.some((e) => e.plugin === "auth");
}
