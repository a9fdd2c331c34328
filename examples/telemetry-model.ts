/**
 * What one simulated device measures: a temperature that wanders (and now and
 * then spikes out of any sane range, as a failing sensor does), a humidity that
 * wanders within 0-100 %, and a battery that drains. Seeded, so a run can be
 * repeated exactly.
 */

/** mulberry32: a small, fast, seedable PRNG (Math.random cannot be seeded). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Metric = "temp" | "humidity" | "battery";
export const METRICS: readonly Metric[] = ["temp", "humidity", "battery"];

export interface Reading {
  metric: Metric;
  value: number;
  unit: string;
  /** True when this temperature is a deliberate out-of-range spike. */
  spike: boolean;
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, n));

export class Sensor {
  private temp: number;
  private humidity: number;
  private battery: number;
  private next = 0;

  constructor(
    private readonly random: () => number,
    /** Probability that a temperature reading is a spike (0-1). */
    private readonly spikeRate: number,
  ) {
    this.temp = 18 + random() * 8;
    this.humidity = 35 + random() * 25;
    this.battery = 80 + random() * 20;
  }

  /** The next reading, cycling through the metrics. */
  read(): Reading {
    const metric = METRICS[this.next]!;
    this.next = (this.next + 1) % METRICS.length;
    switch (metric) {
      case "temp": {
        this.temp = clamp(this.temp + (this.random() - 0.5) * 0.6, -10, 45);
        if (this.random() < this.spikeRate) {
          // A failing sensor reports nonsense far outside any filter's range.
          const value = this.random() < 0.5 ? 120 + this.random() * 80 : -60 - this.random() * 40;
          return { metric, value: round(value, 1), unit: "C", spike: true };
        }
        return { metric, value: round(this.temp, 2), unit: "C", spike: false };
      }
      case "humidity":
        this.humidity = clamp(this.humidity + (this.random() - 0.5) * 2, 0, 100);
        return { metric, value: round(this.humidity, 1), unit: "%", spike: false };
      case "battery":
        this.battery = Math.max(0, this.battery - 0.01 - this.random() * 0.04);
        return { metric, value: round(this.battery, 2), unit: "%", spike: false };
    }
  }
}
