/**
 * Call-time percentiles per plugin and hook, from the sampled call-duration
 * histogram in the metrics registry (ops/metrics.ts): the same numbers
 * Prometheus gets, interpolated within buckets as histogram_quantile() does.
 */
import type { Registry } from "prom-client";

export interface HookTiming {
  /** Sampled calls (one in timingSampleEvery). */
  samples: number;
  /** Seconds. */
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

function quantile(q: number, buckets: [number, number][]): number | null {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return prevLe;
      return prevLe + (le - prevLe) * ((rank - prevCount) / Math.max(1, count - prevCount));
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

export async function pluginTimings(registry: Registry): Promise<Record<string, Record<string, HookTiming>>> {
  const metric = registry.getSingleMetric("wasmq_plugin_call_duration_seconds");
  if (!metric) return {};
  const { values } = (await metric.get()) as { values: MetricValue[] };
  const byKey = new Map<string, [number, number][]>();
  for (const v of values) {
    if (!v.metricName?.endsWith("_bucket")) continue;
    const key = `${v.labels.plugin}\u0000${v.labels.hook}`;
    const le = v.labels.le === "+Inf" ? Infinity : Number(v.labels.le);
    let list = byKey.get(key);
    if (!list) byKey.set(key, (list = []));
    list.push([le, v.value]);
  }
  const out: Record<string, Record<string, HookTiming>> = {};
  for (const [key, buckets] of byKey) {
    const [plugin, hook] = key.split("\u0000") as [string, string];
    buckets.sort((a, b) => a[0] - b[0]);
    (out[plugin] ??= {})[hook] = {
      samples: buckets.at(-1)?.[1] ?? 0,
      p50: quantile(0.5, buckets),
      p90: quantile(0.9, buckets),
      p99: quantile(0.99, buckets),
    };
  }
  return out;
}
