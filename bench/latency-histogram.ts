/**
 * A run's latencies as a compact histogram, so the report can pool every
 * window of a target (the latency scenarios' "all windows" p99): one stall in
 * one 10 s window moves that window's p99 a lot and the pooled p99 of five
 * windows a fifth as much, and both targets' pooled p99s cover the same
 * stretch of the run. Buckets are 1% wide on a log scale from 1 µs, so a
 * pooled percentile is within 1% of the exact one (its bucket's upper edge).
 */

const GROWTH = Math.log(1.01);

/** Bucket index of a latency in ms (bucket b covers (1.01^(b-1), 1.01^b] µs). */
function bucketOf(ms: number): number {
  const us = ms * 1000;
  return us <= 1 ? 0 : Math.ceil(Math.log(us) / GROWTH);
}

/** Upper edge of a bucket, in ms. */
function bucketMs(b: number): number {
  return Math.exp(b * GROWTH) / 1000;
}

/** [bucket, count] pairs, ascending by bucket, of ascending latencies in ms. */
export type LatencyHistogram = [number, number][];

export function histogramOf(sorted: ArrayLike<number>): LatencyHistogram {
  const out: LatencyHistogram = [];
  for (let i = 0; i < sorted.length; i++) {
    const b = bucketOf(sorted[i]!);
    const last = out[out.length - 1];
    if (last && last[0] === b) last[1]++;
    else out.push([b, 1]);
  }
  return out;
}

/**
 * Nearest-rank percentile (p in 0..1) of several histograms together, in ms;
 * NaN when all are empty. `maxMs`, the largest latency of them all, caps the
 * top bucket's upper edge (so a pooled p99.9 never reads above the max).
 */
export function pooledPercentile(histograms: LatencyHistogram[], p: number, maxMs = Infinity): number {
  const counts = new Map<number, number>();
  let n = 0;
  for (const h of histograms) {
    for (const [b, c] of h) {
      counts.set(b, (counts.get(b) ?? 0) + c);
      n += c;
    }
  }
  if (n === 0) return NaN;
  const rank = Math.min(n, Math.max(1, Math.ceil(p * n)));
  let seen = 0;
  for (const b of [...counts.keys()].sort((x, y) => x - y)) {
    seen += counts.get(b)!;
    if (seen >= rank) return Math.min(bucketMs(b), maxMs);
  }
  return NaN;
}
