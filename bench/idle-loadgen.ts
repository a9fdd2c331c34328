/**
 * The idle-connection generator, in its own process (forked by idle-run.ts):
 * opens batches of idle clients on request (bench/idle-clients.ts), holds them,
 * reports how many the broker dropped, and closes them all at the end. Its
 * open-file limit must allow every socket: Node raises the soft limit to the
 * hard one at start-up, so the hard limit (`ulimit -Hn`) is what counts.
 */
import { closeIdleClients, openIdleClients, type IdleClientsSpec, type OpenedIdleClients } from "./idle-clients.js";

export type ToIdle = { type: "open"; spec: IdleClientsSpec } | { type: "check" } | { type: "close" };
export type FromIdle =
  | { type: "opened"; elapsedMs: number; count: number }
  | { type: "checked"; dropped: number; unexpected: number }
  | { type: "closed" }
  | { type: "error"; message: string };

function send(msg: FromIdle): void {
  if (process.connected) process.send!(msg);
}

if (!process.send) {
  console.error("bench/idle-loadgen.js is started by bench/run.js (it talks over the fork IPC channel)");
  process.exit(2);
}

const batches: OpenedIdleClients[] = [];
process.on("message", (msg: ToIdle) => {
  void (async () => {
    try {
      if (msg.type === "open") {
        const opened = await openIdleClients(msg.spec);
        batches.push(opened);
        send({ type: "opened", elapsedMs: opened.elapsedMs, count: opened.sockets.length });
      } else if (msg.type === "check") {
        send({ type: "checked", dropped: batches.reduce((n, b) => n + b.dropped(), 0), unexpected: batches.reduce((n, b) => n + b.unexpected(), 0) });
      } else if (msg.type === "close") {
        for (const b of batches.splice(0)) closeIdleClients(b.sockets);
        send({ type: "closed" });
      }
    } catch (err) {
      send({ type: "error", message: err instanceof Error ? err.message : String(err) });
    }
  })();
});
process.on("disconnect", () => {
  for (const b of batches.splice(0)) closeIdleClients(b.sockets);
  setTimeout(() => process.exit(0), 100).unref();
});
