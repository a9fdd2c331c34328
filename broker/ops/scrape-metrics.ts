/**
 * Prometheus metrics whose values live elsewhere (the broker's, a plugin's or a
 * bridge's own counters), read when scraped: nothing on the per-message path.
 */
import { Counter, Gauge, type Registry } from "prom-client";

export type Labels = Record<string, string>;

/** A counter whose value lives elsewhere (monotonic), exported at scrape time. */
export function mirroredCounter(registry: Registry, name: string, help: string, labelNames: string[], read: () => Iterable<[Labels, number]>): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

/** A gauge read at scrape time. */
export function gauge(registry: Registry, name: string, help: string, labelNames: string[], read: () => Iterable<[Labels, number]> | Promise<Iterable<[Labels, number]>>): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      this.reset();
      for (const [labels, value] of await read()) this.set(labels, value);
    },
  });
}
