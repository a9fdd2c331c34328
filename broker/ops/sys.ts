/**
 * `$SYS/broker/...` topics, named as Mosquitto names them, published retained
 * every `sys.intervalSec` seconds (and once at start). A figure is republished
 * only when its value changed, so an idle broker writes one retained message
 * (the uptime) per interval.
 *
 * Load figures are Mosquitto's: exponentially-weighted moving averages of the
 * per-minute rate over 1, 5 and 15 minutes.
 */
import type { Aedes } from "aedes";
import type { Logger } from "pino";
import type { ConnectionTracker } from "../net/connections.js";
import type { BrokerStats } from "./stats.js";
import type { StoreFigures } from "./store-figures.js";
import { bridgeSysFigures } from "../bridge/ops.js";
import { heldDeliverySysFigures } from "./held-deliveries.js";

export interface SysSources {
  aedes: Aedes;
  stats: BrokerStats;
  tracker: ConnectionTracker;
  store: StoreFigures;
  version: string;
  logger: Logger;
}

const WINDOWS = [
  ["1min", 60],
  ["5min", 300],
  ["15min", 900],
] as const;

/** One figure with 1/5/15-minute moving averages of its per-minute rate. */
class Load {
  private last: number | null = null;
  readonly averages = [0, 0, 0];

  update(total: number, elapsedSec: number): void {
    if (this.last !== null && elapsedSec > 0) {
      const perMinute = ((total - this.last) / elapsedSec) * 60;
      WINDOWS.forEach(([, period], i) => {
        const k = Math.exp(-elapsedSec / period);
        this.averages[i] = this.averages[i]! * k + perMinute * (1 - k);
      });
    }
    this.last = total;
  }
}

export interface SysPublisher {
  /** Publish now (also called by the timer). */
  publishNow(): Promise<void>;
  /** Stop the timer and wait for a publish in progress. */
  stop(): Promise<void>;
}

/**
 * `prefix`: where the figures go, "$SYS/broker/" on a single node; in cluster
 * mode each node has its own subtree ("$SYS/broker/nodes/<id>/"), since
 * retained messages are shared by the cluster and would overwrite each other.
 */
export function startSysPublisher(src: SysSources, intervalSec: number, prefix = "$SYS/broker/"): SysPublisher {
  const { aedes, stats, tracker, store } = src;
  const previous = new Map<string, string>();
  const loads = {
    "messages/received": new Load(),
    "messages/sent": new Load(),
    "publish/received": new Load(),
    "publish/sent": new Load(),
    "bytes/received": new Load(),
    "bytes/sent": new Load(),
    connections: new Load(),
  };
  let lastTick = Date.now();
  let heapMax = 0;

  async function figures(): Promise<[string, string | number][]> {
    const now = Date.now();
    const elapsed = (now - lastTick) / 1000;
    lastTick = now;
    const [retained, offline, subscriptions, queued] = await Promise.all([
      store.retainedCount(),
      store.offline(),
      store.subscriptionCount(aedes),
      store.queuedCount(),
    ]);
    const connected = aedes.connectedClients;
    const clients = (aedes as unknown as { clients: Record<string, { clean: boolean }> }).clients;
    let connectedPersistent = 0;
    for (const id in clients) if (!clients[id]!.clean) connectedPersistent++;
    const disconnected = Math.max(0, offline.clientsCount - connectedPersistent);
    const bytesReceived = tracker.bytesReceived();
    const bytesSent = tracker.bytesSent();
    const heap = process.memoryUsage().heapUsed;
    heapMax = Math.max(heapMax, heap);

    loads["messages/received"].update(stats.packetsReceived, elapsed);
    loads["messages/sent"].update(stats.packetsSent, elapsed);
    loads["publish/received"].update(stats.publishReceivedTotal(), elapsed);
    loads["publish/sent"].update(stats.publishSentTotal(), elapsed);
    loads["bytes/received"].update(bytesReceived, elapsed);
    loads["bytes/sent"].update(bytesSent, elapsed);
    loads.connections.update(tracker.accepted, elapsed);

    const out: [string, string | number][] = [
      ["version", `wasmq version ${src.version}`],
      ["uptime", `${stats.uptimeSeconds(now)} seconds`],
      ["clients/connected", connected],
      ["clients/active", connected],
      ["clients/disconnected", disconnected],
      ["clients/inactive", disconnected],
      ["clients/total", connected + disconnected],
      ["clients/maximum", stats.maxClients],
      ["messages/received", stats.packetsReceived],
      ["messages/sent", stats.packetsSent],
      ["publish/messages/received", stats.publishReceivedTotal()],
      ["publish/messages/sent", stats.publishSentTotal()],
      ["bytes/received", bytesReceived],
      ["bytes/sent", bytesSent],
      ["retained messages/count", retained],
      ["subscriptions/count", subscriptions],
      ["heap/current", heap],
      ["heap/maximum", heapMax],
    ];
    if (queued !== null) out.push(["store/messages/count", queued]);
    out.push(...heldDeliverySysFigures(store));
    out.push(...bridgeSysFigures(aedes));
    for (const [name, load] of Object.entries(loads)) {
      WINDOWS.forEach(([window], i) => out.push([`load/${name}/${window}`, load.averages[i]!.toFixed(2)]));
    }
    return out;
  }

  let running: Promise<void> | null = null;
  async function publishNow(): Promise<void> {
    if (aedes.closed) return;
    const changed = (await figures()).filter(([name, value]) => previous.get(name) !== String(value));
    // All at once: the store commits them together (one LMDB transaction and flush, not one per figure).
    await Promise.all(
      changed.map(
        ([name, value]) =>
          new Promise<void>((resolve) => {
            const topic = `${prefix}${name}`;
            const payload = String(value);
            if (aedes.closed) return resolve();
            aedes.publish({ cmd: "publish", topic, payload: Buffer.from(payload), qos: 0, retain: true, dup: false }, (err) => {
              if (err) src.logger.warn({ topic, err: err.message }, "$SYS publish failed");
              else previous.set(name, payload);
              resolve();
            });
          }),
      ),
    );
  }

  const tick = () => {
    // A slow store must not stack ticks up.
    if (running) return;
    running = publishNow()
      .catch((err: Error) => src.logger.warn({ err: err.message }, "$SYS figures failed"))
      .finally(() => {
        running = null;
      });
  };
  const timer = setInterval(tick, intervalSec * 1000);
  timer.unref();
  tick();
  return {
    publishNow: async () => {
      while (running) await running;
      await publishNow();
    },
    async stop() {
      clearInterval(timer);
      while (running) await running;
    },
  };
}
