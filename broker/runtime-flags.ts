/**
 * The V8 flags wasmq's broker process is started with: by `npm start`
 * (package.json), by the `wasmq` command (broker/cli.ts's `#!` line: Node
 * refuses these flags in NODE_OPTIONS) and, for every Node broker alike, by the
 * bench. test/runtime-flags.test.ts keeps the three in step.
 *
 * --min-semi-space-size=16 (MB): V8 starts the young generation at 1 MB per
 * semi-space and grows it only after collections in which much survived. A
 * broker's garbage is short-lived per-message objects, so at a steady
 * 10k msg/s it may stay small for its whole life, scavenging ~15 times a
 * second: each scavenge stalls the ~10 messages in flight, and that is the
 * QoS 0 p99 (bench/README.md "Quiet run after the third #17 round": 113–165
 * scavenges per 10 s window gave p99 0.45–0.83 ms, a window where the young
 * generation had grown gave 15 scavenges and 0.34 ms). 16 MB is the size V8
 * grows to under load anyway (its default maximum on 64-bit), so a busy broker
 * holds no more than it did; a freshly started one holds more: RSS after start
 * 96.6 -> 114.4 MB (measured twice each, default config).
 *
 * --initial-old-space-size=128 (MB): the old generation's allocation limit is
 * never set below 128 MB, so no full (mark-compact) collection starts while
 * the old generation is smaller. Without it a small heap falls into a mode
 * where V8 marks again as soon as it finished: when little is promoted (a
 * broker's steady state), V8 grows the limit by its minimum, 8 MB plus one
 * semi-space (--trace-gc-verbose: "new limit ... (1.1)"), which leaves less
 * room than the young generation holds (two 16 MB semi-spaces), so the next
 * incremental marking starts at once and a mark-compact follows every
 * 30-100 ms for as long as the load lasts. Each costs in proportion to the
 * live heap, on the main thread and on V8's workers: at 16 KB PUBLISH traffic
 * that doubled the CPU per message of wasmq and of bare aedes alike (bench/README.md
 * "The 16 KB path, part 5"). Heaps above the floor keep V8's own limits; what
 * the floor costs is old-generation garbage up to 128 MB before it is
 * collected, reached only as fast as objects are promoted.
 */
export const BROKER_NODE_FLAGS: readonly string[] = ["--min-semi-space-size=16", "--initial-old-space-size=128"];
