// A broker in its own process for the fuzz run (started with --expose-gc), so
// its heap can be measured after a full garbage collection, apart from the
// fuzzer's own allocations. Talks to the parent over IPC:
//   → {type: "ready", port}                      once listening
//   ← {type: "heap"}  → {type: "heap", ...}       after gc(): heap, rss, clients, sockets, counters
//   ← {type: "stop"}                              close and exit 0
import { rmSync } from "node:fs";
import { pino } from "pino";
import { parseRawConfig, resolveConfig } from "../../broker/config.js";
import { startBroker } from "../../broker/server.js";
import { storeFigures } from "../../broker/ops/store-figures.js";
import { tempDir } from "../helpers.js";
import { FUZZ_LIMITS, type HeapReport } from "./shared.js";

async function main(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --expose-gc");
  const data = tempDir("wasmq-fuzz-");
  const config = resolveConfig(parseRawConfig({ port: 0, ws: false, data, sys: { intervalSec: 1 }, limits: FUZZ_LIMITS }, "fuzz broker"), null);
  const broker = await startBroker(config, { logger: pino({ level: process.env.WASMQ_FUZZ_LOG ?? "silent" }, pino.destination(2)) });
  const clients = () => (broker.aedes as unknown as { connectedClients: number }).connectedClients;
  const store = storeFigures(broker.persistence);

  process.on("message", async (msg: { type: string }) => {
    if (msg.type === "heap") {
      // Twice, with a turn of the event loop between: finalizers and weak maps settle.
      gc();
      await new Promise((r) => setImmediate(r));
      gc();
      const report: HeapReport = {
        type: "heap",
        heapUsed: process.memoryUsage().heapUsed,
        rss: process.memoryUsage().rss,
        clients: clients(),
        sockets: broker.connections.open,
        protocolErrors: broker.stats.protocolErrors,
        limitRejections: { ...broker.stats.limitRejections, maxConnections: broker.connections.refused },
        connectsAccepted: broker.stats.connectsAccepted,
        publishReceived: broker.stats.publishReceivedTotal(),
        persistentSessions: (await store.offline()).clientsCount,
        queuedMessages: (await store.queuedCount()) ?? -1,
      };
      process.send!(report);
    } else if (msg.type === "stop") {
      await broker.close();
      rmSync(data, { recursive: true, force: true });
      process.exit(0);
    }
  });
  process.send!({ type: "ready", port: broker.port("tcp") });
}

main().catch((err: unknown) => {
  process.stderr.write(`fuzz broker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
