// Hostile input: malformed and mutated MQTT 3.1.1 and 5 packets (truncated, wrong lengths,
// flipped bits, invalid flags and types, ill-formed UTF-8, oversize, garbage)
// over thousands of connections, against a broker in its own process. The
// broker must stay up, keep serving a well-behaved client throughout, and its
// heap must come back near its baseline once the connections are gone.
//
// CI runs 20,000 malformed packets (WASMQ_FUZZ_PACKETS overrides);
// `npm run fuzz` runs the full 100,000 (see test/fuzz/run.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkSession, formatReport } from "./fuzz/report.js";
import { runFuzzSession } from "./fuzz/session.js";

const PACKETS = Number(process.env.WASMQ_FUZZ_PACKETS ?? 20_000);
const SEED = Number(process.env.WASMQ_FUZZ_SEED ?? 20_260_101);

test(`fuzz: ${PACKETS} malformed packets; the broker stays up, serves the probe, and its heap comes back`, { timeout: 300_000 }, async (t) => {
  const result = await runFuzzSession({ packets: PACKETS, seed: SEED });
  t.diagnostic(formatReport(result, SEED));
  assert.ok(result.fuzz.mutated >= PACKETS);
  assert.ok(result.fuzz.connections > 1000, "many connections");
  assert.ok(result.fuzz.v5Connections > result.fuzz.connections / 5, "MQTT 5 connections with properties among them");
  assert.ok(result.after.protocolErrors > 0 && result.after.limitRejections.maxPacketSize! > 0, "the broker saw (and refused) the bad input");
  assert.ok(result.probe.sent > 50, "the probe ran throughout the fuzz");
  assert.deepEqual(checkSession(result), []);
});
