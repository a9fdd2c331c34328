/**
 * Evidence for the latency tail, measured inside a process over an interval:
 * how late its event loop ran (perf_hooks.monitorEventLoopDelay, 1 ms
 * resolution) and how long it paused for garbage collection (the "gc"
 * performance entries, scavenges of the young generation and full
 * mark-compact collections counted apart; the rest are incremental-marking
 * steps and weak-callback processing).
 * The bench takes it in every Node target (per measurement window) and in
 * the load generator, so a p99 can be laid next to what stalled whom.
 */
import { constants, monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from "node:perf_hooks";
import type { TailFigures } from "./protocol.js";

export class TailMonitor {
  private readonly loop: IntervalHistogram;
  private readonly gc: PerformanceObserver;
  private gcCount = 0;
  private gcMaxMs = 0;
  private gcTotalMs = 0;
  private scavenges = 0;
  private fullGcs = 0;
  private scavengeMaxMs = 0;

  constructor() {
    this.loop = monitorEventLoopDelay({ resolution: 1 });
    this.loop.enable();
    this.gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const ms = e.duration;
        this.gcCount++;
        this.gcTotalMs += ms;
        if (ms > this.gcMaxMs) this.gcMaxMs = ms;
        const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
        if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) this.fullGcs++;
        if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
          this.scavenges++;
          if (ms > this.scavengeMaxMs) this.scavengeMaxMs = ms;
        }
      }
    });
    this.gc.observe({ entryTypes: ["gc"] });
  }

  /** Figures since the previous read (or construction), then start a new interval. */
  read(): TailFigures {
    const ns = 1e6;
    const figures: TailFigures = {
      loopP50Ms: this.loop.count ? this.loop.percentile(50) / ns : 0,
      loopP99Ms: this.loop.count ? this.loop.percentile(99) / ns : 0,
      loopMaxMs: this.loop.count ? this.loop.max / ns : 0,
      gcCount: this.gcCount,
      gcMaxMs: this.gcMaxMs,
      gcTotalMs: this.gcTotalMs,
      scavenges: this.scavenges,
      fullGcs: this.fullGcs,
      scavengeMaxMs: this.scavengeMaxMs,
    };
    this.loop.reset();
    this.gcCount = this.gcMaxMs = this.gcTotalMs = this.scavenges = this.scavengeMaxMs = this.fullGcs = 0;
    return figures;
  }

  dispose(): void {
    this.loop.disable();
    this.gc.disconnect();
  }
}
