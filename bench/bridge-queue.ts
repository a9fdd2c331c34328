/**
 * Latency of the bridge queue's durable enqueue (what a local QoS 1/2
 * publisher's PUBACK/PUBREC waits for), open loop: every timer turn (~1 ms)
 * `--per-tick` messages are enqueued whatever happened to earlier ones, so
 * writes keep arriving while earlier batches commit and flush — the regime in
 * which waiting for the wrong batch's flush shows. LMDB in a temp dir,
 * durability "sync"; each message is acknowledged (removed) once durable.
 *
 *   node dist/bench/bridge-queue.js [--seconds 3] [--per-tick 5] [--root DIR]
 *
 * `--root` loads the queue from another build's dist/ (e.g. a copy of the
 * previous commit's) for a same-machine before/after; run the two interleaved.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "3" },
    "per-tick": { type: "string", default: "5" },
    root: { type: "string", default: fileURLToPath(new URL("..", import.meta.url)) },
  },
});
const root = resolve(values.root);
type QueueModule = typeof import("../broker/bridge/queue.js");
type EnvModule = typeof import("../broker/persistence/lmdb/environment.js");
const { openEnvironment } = (await import(join(root, "broker/persistence/lmdb/environment.js"))) as EnvModule;
const { BridgeQueue } = (await import(join(root, "broker/bridge/queue.js"))) as QueueModule;

const dir = mkdtempSync(join(tmpdir(), "wasmq-bench-bridge-queue-"));
const dbs = openEnvironment({ path: dir });
const queue = new BridgeQueue("cloud", { maxMessages: 1e9, maxBytes: 1e12, onFull: "drop-oldest" }, { root: dbs.root, durability: "sync" });
const payload = Buffer.alloc(64, 1);
const perTick = Number(values["per-tick"]);
const latencies: number[] = [];
const pending: Promise<void>[] = [];
const end = performance.now() + Number(values.seconds) * 1000;
await new Promise<void>((done) => {
  const tick = () => {
    if (performance.now() > end) return done();
    for (let i = 0; i < perTick; i++) {
      const t = performance.now();
      const r = queue.enqueue(`sensors/d${i}/temp`, payload, 1, false);
      pending.push(
        r.durable.then(() => {
          latencies.push(performance.now() - t);
          const m = queue.next();
          if (m) queue.ack(m.seq);
        }),
      );
    }
    setTimeout(tick, 1);
  };
  tick();
});
await Promise.all(pending);
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(2);
const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length;
console.log(`${latencies.length} messages: mean ${mean.toFixed(2)} ms, p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms (root ${root})`);
await dbs.root.close();
rmSync(dir, { recursive: true, force: true });
