/** Small numeric helpers: growable typed arrays, percentiles, medians and spreads. */

/** A byte per index, growing on demand (per-sequence-number flags and counters). */
export class GrowableBytes {
  private data = new Uint8Array(1024);

  get(i: number): number {
    return i < this.data.length ? this.data[i]! : 0;
  }

  set(i: number, v: number): void {
    if (i >= this.data.length) {
      let n = this.data.length;
      while (n <= i) n *= 2;
      const next = new Uint8Array(n);
      next.set(this.data);
      this.data = next;
    }
    this.data[i] = v;
  }
}

export class GrowableFloats {
  private data = new Float64Array(4096);
  length = 0;

  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }

  /** The values in the order pushed (a copy). */
  values(): Float64Array {
    return this.data.slice(0, this.length);
  }

  sorted(): Float64Array {
    return this.data.slice(0, this.length).sort();
  }
}

/** Nearest-rank percentile of ascending values (NaN when empty). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const rank = Math.min(n, Math.max(1, Math.ceil(p * n)));
  return sorted[rank - 1]!;
}

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export interface Spread {
  min: number;
  max: number;
}

export function spread(values: number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length ? { min: Math.min(...v), max: Math.max(...v) } : { min: NaN, max: NaN };
}
