/**
 * CPU time of the standard chain's plugin calls per message, without a broker:
 * what one message costs a Wasm broker in plugin calls (publish through acl,
 * filter and router, then deliver through the plugins that run deliver),
 * alternating the two hooks as the broker does. The label names the plugins
 * each hook actually calls: with the bench config acl declares deliver idle
 * (no deny rules), so the deliver half is an empty chain there. Measured as process CPU time (user + system), which a
 * loaded machine inflates far less than wall time, over 9 rounds; prints the
 * median and the minimum.
 *
 *   node dist/bench/chain-cost.js [--size 64] [--root DIR]
 *
 * `--root` runs another build's host and plugins (e.g. a `git worktree` of an
 * older commit, built with `npm ci`), for a before/after in turns.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath, pathToFileURL } from "node:url";

const { values } = parseArgs({ options: { size: { type: "string", default: "64" }, root: { type: "string" } } });
const size = Number(values.size);
const root = values.root ? resolve(values.root) : resolve(fileURLToPath(new URL(".", import.meta.url)), "../..");
const load = (path: string) => import(pathToFileURL(resolve(root, path)).href);

const { PluginChain } = await load("dist/host/chain.js");
const { MemoryKvStore } = await load("dist/host/kv.js");
const { emptyMessage } = await load("dist/host/message.js");
const plugins = await load("dist/bench/plugins.js");
const { payloadTemplate, stamp } = await load("dist/bench/payload.js");

const specs = ["acl", "filter", "router"].map((name) => ({ name, wasm: plugins.wasmPath(name), config: plugins.benchSetup(name).config }));
const chain = await PluginChain.load(specs, { kv: new MemoryKvStore(), publish: () => {} });
const payload = payloadTemplate(size);
stamp(payload, 0, 1_000_000, 0, 1);

// Fresh message objects per call with a fresh topic string, as the broker's parser hands them over.
function publish() {
  const m = emptyMessage();
  m.topic = plugins.benchTopic(0);
  m.clientId = "bench-pub-0";
  m.username = plugins.BENCH_USER.username;
  m.qos = 1;
  m.payload = payload;
  return m;
}
function deliver() {
  const m = publish();
  m.clientId = "bench-sub-0";
  m.peer = "bench-pub-0";
  return m;
}

interface SlotView {
  name: string;
  has?: (hook: string) => boolean;
  idleHooks?: ReadonlySet<string>;
}
/** The plugins the chain calls for a hook, as the broker does: those that have it and did not declare it idle (an older `--root` build: those that have it). */
function calls(hook: string): string {
  const slots = chain.slots as SlotView[];
  const called = slots.filter((s) => s.has?.(hook) ?? true).map((s) => s.name);
  if (called.length > 0) return `${hook}: ${called.join("+")}`;
  const idle = slots.filter((s) => s.idleHooks?.has(hook)).map((s) => s.name);
  return `${hook}: no plugin call${idle.length > 0 ? ` (${idle.join(", ")} declared it idle)` : ""}`;
}

let verdicts = 0;
function round(n: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    verdicts += chain.run("publish", publish()).verdict;
    verdicts += chain.run("deliver", deliver()).verdict;
  }
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / n;
}

const perRound = size > 1024 ? 5_000 : 30_000;
round(perRound); // warm-up: compile and optimise
const rounds = Array.from({ length: 9 }, () => round(perRound)).sort((a, b) => a - b);
const measured = `${calls("publish")}, ${calls("deliver")}`;
chain.close();
if (verdicts !== 0) throw new Error("a plugin of the standard chain did not continue the bench's reading");
console.log(`chain CPU per message (${size} B, ${measured}): median ${rounds[4]!.toFixed(0)} ns, min ${rounds[0]!.toFixed(0)} ns (${root})`);
