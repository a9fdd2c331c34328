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
 */
export const BROKER_NODE_FLAGS: readonly string[] = ["--min-semi-space-size=16"];
