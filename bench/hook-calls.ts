/**
 * A fixed workload for counting instructions per plugin call: loads one plugin (as
 * bench:hooks does, with its bench config), runs its publish hook 200 times to warm up,
 * then --calls more, and exits. Under valgrind the difference between two call counts
 * is the cost of that many calls, whatever the machine's load (bench/README.md, fuel
 * section):
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
 *     node --no-liftoff dist/bench/hook-calls.js --plugin router --size 16384 --calls 2010
 *
 * --host DIR runs an older built checkout's host and plugin builds instead (as
 * `npm run bench -- --baseline DIR` does); --unmetered loads the plugin without fuel.
 * The fuel instrumentation runs in a child process, which valgrind does not trace
 * unless asked to.
 */
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    plugin: { type: "string" },
    size: { type: "string", default: "64" },
    calls: { type: "string", default: "1000" },
    host: { type: "string" },
    unmetered: { type: "boolean" },
  },
});
if (!values.plugin) {
  console.error("usage: node dist/bench/hook-calls.js --plugin NAME [--size BYTES] [--calls N] [--host DIR] [--unmetered]");
  process.exit(2);
}
const root = values.host ? join(resolve(values.host), "dist") : resolve(import.meta.dirname, "..");
const load = (path: string) => import(pathToFileURL(join(root, path)).href);
const host = (await load("host/index.js")) as typeof import("../host/index.js");
const plugins = (await load("bench/plugins.js")) as typeof import("./plugins.js");
const payload = (await load("bench/payload.js")) as typeof import("./payload.js");

const name = values.plugin;
const config = plugins.benchSetup(name)?.config ?? plugins.exampleConfig(name);
const chain = await host.PluginChain.load([{ name, wasm: plugins.wasmPath(name), config, limits: { fuel: 1_000_000_000 } }], {
  kv: new host.MemoryKvStore(),
  publish: () => {},
  meterFuel: !values.unmetered,
});
const msg = host.emptyMessage();
msg.topic = plugins.benchTopic(0);
msg.clientId = "bench-pub-0";
msg.username = plugins.BENCH_USER.username;
const p = payload.payloadTemplate(Number(values.size));
payload.stamp(p, 0, 1_000_000, 0, 1);
msg.payload = p;
const calls = Number(values.calls);
for (let i = 0; i < 200 + calls; i++) chain.run("publish", { ...msg });
chain.close();
process.exit(0);
