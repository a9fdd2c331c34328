// What a fuzz session must show, and how it is reported.
import type { SessionResult } from "./session.js";

/** Heap allowed above the warmed-up baseline once every fuzz connection is gone. */
export const HEAP_SLACK_BYTES = 50 * 1024 * 1024;

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

/** Why the session failed, one line each; empty when it passed. */
export function checkSession(r: SessionResult): string[] {
  const problems: string[] = [];
  if (r.brokerExit !== null) problems.push(`the broker process exited (code ${r.brokerExit}): ${r.brokerStderr.trim().slice(-2000)}`);
  if (!r.probe.stayedConnected) problems.push("the probe client was disconnected");
  if (r.probe.sent === 0) problems.push("the probe sent nothing");
  if (r.probe.acked !== r.probe.sent) problems.push(`the probe got ${r.probe.acked} PUBACKs for ${r.probe.sent} messages`);
  if (r.probe.missing !== 0) problems.push(`${r.probe.missing} of the probe's ${r.probe.sent} messages never arrived`);
  if (r.after.sockets > 1 || r.after.clients > 1) problems.push(`${r.after.sockets} sockets / ${r.after.clients} clients still open after the run (only the probe should be)`);
  if (r.after.heapUsed > r.baseline.heapUsed + HEAP_SLACK_BYTES) {
    problems.push(`heap ${mb(r.after.heapUsed)} after the run, baseline ${mb(r.baseline.heapUsed)}: more than ${mb(HEAP_SLACK_BYTES)} above`);
  }
  return problems;
}

export function formatReport(r: SessionResult, seed: number): string {
  const mutations = Object.entries(r.fuzz.byMutation)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  const limits = Object.entries(r.after.limitRejections)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return [
    `seed ${seed}: ${r.fuzz.packets} packets (${r.fuzz.mutated} mutated) over ${r.fuzz.connections} connections (${r.fuzz.v5Connections} MQTT 5), ${mb(r.fuzz.bytes)}, in ${(r.durationMs / 1000).toFixed(1)} s`,
    `  mutations: ${mutations}`,
    `  broker: ${r.after.connectsAccepted} CONNECTs accepted, ${r.after.publishReceived} PUBLISH handled, ${r.after.protocolErrors} connections closed for protocol errors; limits: ${limits || "none hit"}`,
    `  probe: ${r.probe.sent} sent, ${r.probe.acked} acked, ${r.probe.received} received, connected throughout: ${r.probe.stayedConnected}`,
    `  heap after GC: baseline ${mb(r.baseline.heapUsed)}, after ${mb(r.after.heapUsed)} (rss ${mb(r.baseline.rss)} → ${mb(r.after.rss)}); state kept by design: ${r.after.persistentSessions} persistent sessions, ${r.after.queuedMessages} stored QoS 1/2 messages`,
  ].join("\n");
}
