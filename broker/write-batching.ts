/**
 * One socket write per event-loop turn per client, instead of one per packet.
 *
 * mqtt-packet corks a stream for each packet it writes and uncorks it on the
 * next tick, so packets written in one synchronous run share a syscall. aedes
 * writes a QoS 1 PUBACK right after parsing, in the same run as its
 * neighbours; wasmq writes it once the message is stored and routed (so PUBACK
 * means stored), which completes message by message, each in its own tick: a
 * publisher with 256 messages in flight got 256 separate writes where bare
 * aedes made one. Holding the cork until the turn ends (setImmediate) puts
 * them back together, and likewise a subscriber's deliveries, which aedes
 * issues one per setImmediate.
 */
import type { Writable } from "node:stream";

export function batchWrites(conn: Writable): void {
  let corked = false;
  const uncork = () => {
    corked = false;
    conn.uncork();
  };
  const cork = conn.cork.bind(conn);
  conn.cork = () => {
    if (!corked && !conn.destroyed) {
      corked = true;
      cork();
      setImmediate(uncork);
    }
    cork();
  };
}
