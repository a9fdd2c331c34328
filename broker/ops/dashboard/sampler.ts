/**
 * One sample of the broker's own figures per second, kept for the last 15
 * minutes, so the dashboard's charts open full and then follow live. Rates are
 * differences of the running totals the broker keeps anyway (ops/stats.ts, the
 * plugin slots' verdict counts, the connection tracker); store figures that can
 * cost a scan (the memory store counts retained messages by streaming them)
 * are read every STORE_EVERY samples and carried in between.
 */
import type { Aedes } from "aedes";
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import type { PluginChain } from "../../../host/index.js";
import type { ConnectionTracker } from "../../net/connections.js";
import type { BrokerStats } from "../stats.js";
import type { StoreFigures } from "../store-figures.js";
import type { Sample } from "./sample.js";

export type { Sample };

export interface SamplerSources {
  aedes: Aedes;
  chain: PluginChain;
  stats: BrokerStats;
  tracker: ConnectionTracker;
  store: StoreFigures;
}

export const HISTORY_SECONDS = 15 * 60;
const STORE_EVERY = 5;

interface Totals {
  t: number;
  in: number;
  out: number;
  dropped: number;
  denied: number;
  refused: number;
  /** The write hold's counters (LMDB), else null. */
  holds: { held: number; dropped: number; written: number; writtenFirst: number } | null;
}

export class Sampler {
  private readonly samples: Sample[] = [];
  private readonly listeners = new Set<(s: Sample) => void>();
  private readonly loop: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  private last: Totals;
  private tick = 0;
  private store = { subscriptions: 0, retained: 0, queued: null as number | null };

  constructor(
    private readonly src: SamplerSources,
    intervalMs = 1000,
  ) {
    this.loop = monitorEventLoopDelay({ resolution: 10 });
    this.loop.enable();
    this.last = this.totals();
    this.timer = setInterval(() => void this.take(), intervalMs);
    this.timer.unref();
    void this.readStore();
  }

  history(): Sample[] {
    return this.samples.slice();
  }

  subscribe(fn: (s: Sample) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  stop(): void {
    clearInterval(this.timer);
    this.loop.disable();
    this.listeners.clear();
  }

  private totals(): Totals {
    const { stats, chain, tracker } = this.src;
    let dropped = 0;
    let denied = 0;
    for (const s of chain.slots) {
      dropped += s.stats.verdicts.drop;
      denied += s.stats.verdicts.deny;
    }
    for (const n of Object.values(stats.limitRejections)) dropped += n;
    const h = this.src.store.holds?.();
    return {
      holds: h ? { held: h.held, dropped: h.droppedUnwritten, written: h.written, writtenFirst: h.writtenFirst } : null,
      t: Date.now(),
      in: stats.publishReceivedTotal(),
      out: stats.publishSentTotal(),
      dropped,
      denied,
      refused: stats.connectsRefused + tracker.refused,
    };
  }

  private async readStore(): Promise<void> {
    const { store, aedes } = this.src;
    try {
      this.store = { subscriptions: await store.subscriptionCount(aedes), retained: await store.retainedCount(), queued: await store.queuedCount() };
    } catch {
      // A store closing under us: keep the last figures.
    }
  }

  private async take(): Promise<void> {
    if (this.tick++ % STORE_EVERY === 0) await this.readStore();
    const now = this.totals();
    const dt = Math.max(0.001, (now.t - this.last.t) / 1000);
    const rate = (k: keyof Omit<Totals, "t" | "holds">) => Math.max(0, (now[k] - this.last[k]) / dt);
    const holdRate = (k: "held" | "dropped" | "written" | "writtenFirst") => (now.holds && this.last.holds ? Math.max(0, (now.holds[k] - this.last.holds[k]) / dt) : null);
    const mem = process.memoryUsage();
    const sample: Sample = {
      t: now.t,
      msgsIn: rate("in"),
      msgsOut: rate("out"),
      clients: this.src.aedes.connectedClients,
      ...this.store,
      dropped: rate("dropped"),
      denied: rate("denied"),
      refused: rate("refused"),
      held: holdRate("held"),
      heldDropped: holdRate("dropped"),
      heldWritten: holdRate("written"),
      heldWrittenFirst: holdRate("writtenFirst"),
      rssMB: mem.rss / 2 ** 20,
      heapMB: mem.heapUsed / 2 ** 20,
      loopP99Ms: this.loop.count ? this.loop.percentile(99) / 1e6 : 0,
      loopMeanMs: this.loop.count ? this.loop.mean / 1e6 : 0,
    };
    this.loop.reset();
    this.last = now;
    this.samples.push(sample);
    if (this.samples.length > HISTORY_SECONDS) this.samples.shift();
    for (const l of this.listeners) l(sample);
  }
}
