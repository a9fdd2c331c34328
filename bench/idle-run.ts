/**
 * One idle-connection run (scenarios with `conns`): how much memory and how
 * much time a broker spends per connected, subscribed, idle client.
 *
 *   fresh target process (a process reused after an earlier run keeps heap and
 *   malloc arenas it would reuse, hiding part of the cost) → broker started →
 *   WARMUP clients opened and held (JIT-compiles the connect path) → memory
 *   after GC (baseline) and CPU → `conns` clients opened, at most
 *   CONCURRENCY handshakes at a time (connect time and broker CPU) → 1 s
 *   settle → memory after GC → dropped-client check → close.
 *
 * KB per connection = (RSS after − RSS baseline) / conns, both readings
 * settled (bench/settled-memory.ts: rounds of two full GCs until RSS stops
 * falling); the first round's figures (two GCs, the bench's reading before
 * 2026-12-06 rss5) are kept as `beforeTwoGc` / `afterTwoGc`. Kernel socket
 * buffers are not in RSS; every target is measured the same way.
 */
import { fileURLToPath } from "node:url";
import { BrokerRun, Child, type TargetPool } from "./orchestrate.js";
import { BENCH_USER, chainNeedsCredentials } from "./plugins.js";
import type { FromIdle, ToIdle } from "./idle-loadgen.js";
import type { MemoryStats } from "./protocol.js";
import { readSettled } from "./settled-memory.js";
import type { Scenario, TargetName } from "./scenarios.js";

const IDLE_LOADGEN_JS = fileURLToPath(new URL("./idle-loadgen.js", import.meta.url));

/** Clients opened (and held) before the baseline reading. */
export const IDLE_WARMUP = 300;
/** Handshakes in flight at once: a steady stream well under the listen backlog (511). */
export const IDLE_CONCURRENCY = 64;
/** No PINGREQ is due while the bench holds the clients (a run lasts well under this). */
const KEEPALIVE_SEC = 600;
const SETTLE_MS = 1000;
/** Sockets a process may hold besides the clients (listener, IPC, LMDB, stdio) within the 20,000 open files of this machine class. */
export const MAX_IDLE_CONNS = 19_500 - IDLE_WARMUP;

export interface IdleRecord {
  scenario: string;
  target: TargetName;
  rep: number;
  version: string;
  plugins: string[];
  persistence: "memory" | "lmdb";
  conns: number;
  /** First TCP connect to last SUBACK of the measured clients. */
  connectMs: number;
  /** Broker CPU seconds over the measured connect phase. */
  connectCpuSec: number;
  /** Settled readings (bench/settled-memory.ts). */
  before: MemoryStats;
  after: MemoryStats;
  /** The first reading of each (two GCs): the method before the settled one. */
  beforeTwoGc: MemoryStats;
  afterTwoGc: MemoryStats;
  /** Readings taken until RSS was stable, before and after. */
  settleRounds: [number, number];
  /** Clients the broker closed, and clients sent anything, while held idle. */
  dropped: number;
  unexpected: number;
}

export async function runIdle(pool: TargetPool, s: Scenario, target: TargetName, rep: number, persistenceDefault: "memory" | "lmdb", conns: number): Promise<IdleRecord> {
  // A fresh process: one reused after an earlier run keeps heap and malloc arenas it would reuse.
  await pool.discard(target);
  await pool.preload([target]);
  const run = new BrokerRun(pool, s, target, persistenceDefault, "wasmq-bench-idle-");
  const { broker, chain, persistence } = run;
  const gen = new Child<ToIdle, FromIdle>(`idle generator (${s.id} → ${target})`, IDLE_LOADGEN_JS);
  try {
    const ready = await run.start();
    const memory = async () => (await run.ask("memory", 60_000)).memory;
    const open = async (count: number, firstIndex: number) => {
      // Generous bounds, not speed expectations: on a loaded 2-core machine 19,000 handshakes took up to 75 s.
      const p = gen.expect("opened", 660_000);
      const spec = { port: ready.port, count, firstIndex, concurrency: IDLE_CONCURRENCY, credentials: chainNeedsCredentials(chain) ? BENCH_USER : null, keepaliveSec: KEEPALIVE_SEC, qos: 1 as const };
      gen.send({ type: "open", spec });
      return Promise.race([p, broker.died, gen.died]);
    };
    const cpu = async () => (await run.ask("stats", 10_000)).stats.cpuSec;
    await open(IDLE_WARMUP, 0);
    const before = await readSettled(memory);
    const cpu0 = await cpu();
    const opened = await open(conns, IDLE_WARMUP);
    const cpu1 = await cpu();
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const after = await readSettled(memory);
    const checkP = gen.expect("checked", 10_000);
    gen.send({ type: "check" });
    const checked = await Promise.race([checkP, gen.died]);
    return {
      scenario: s.id,
      target,
      rep,
      version: ready.version,
      plugins: chain.map((e) => e.name),
      persistence,
      conns: opened.count,
      connectMs: opened.elapsedMs,
      connectCpuSec: cpu1 - cpu0,
      before: before.settled,
      after: after.settled,
      beforeTwoGc: before.first,
      afterTwoGc: after.first,
      settleRounds: [before.rounds, after.rounds],
      dropped: checked.dropped,
      unexpected: checked.unexpected,
    };
  } finally {
    const closedP = gen.expect("closed", 20_000).catch(() => {});
    gen.send({ type: "close" });
    await Promise.race([closedP, gen.died.catch(() => {})]);
    gen.proc.disconnect?.();
    await gen.stop(3000);
    await run.end(60_000);
  }
}
