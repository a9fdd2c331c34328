import { envNodeFlags } from "./env-flags.js";

/**
 * The load generator's Node flags: it timestamps every delivery, so a pause of
 * its own is a stall of the instrument, charged to whichever broker was under
 * test. `--trace-gc` of the generator at a fixed 10k msg/s (bench/README.md
 * "The generator's own collections") showed full collections inside the
 * windows, two per traced 10 s window, pausing it for 2–14 ms each:
 *   - "Mark-Compact (reduce)": V8 takes a process allocating this slowly for
 *     idle and, 8 s after its start-up mark-compact, shrinks its heap
 *     (`--no-memory-reducer`);
 *   - "GC in old space requested" at QoS 1 with an 11.7 MB old space: the old
 *     generation reaching V8's small initial limit, cured by the floor the
 *     brokers have too (`--initial-old-space-size=128`).
 * The brokers' 16 MB semi-spaces are left out on purpose: the generator's
 * first scavenges then copied 6–8 MB of start-up survivors, 13 ms each, inside
 * the window; V8's own sizing keeps its scavenges at 2–6 a window, up to 2.5 ms.
 * WASMQ_BENCH_GEN_ARGS="--trace-gc ..." adds flags.
 */
export function generatorNodeArgs(): string[] {
  return ["--initial-old-space-size=128", "--no-memory-reducer", ...envNodeFlags("WASMQ_BENCH_GEN_ARGS")];
}
